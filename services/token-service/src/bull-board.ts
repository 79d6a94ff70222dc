import { createBullBoard } from '@bull-board/api'
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter'
import { FastifyAdapter } from '@bull-board/fastify'
import type { FastifyInstance } from 'fastify'
import { STAGES, STAGE_NAMES, type StageQueues } from '@fitstream/shared'
import { requireToken } from './auth.js'

export const BULL_BOARD_PATH = '/admin/queues'

/**
 * Bull Board at /admin/queues, behind the admin token: every stage's queue and its dead-letter
 * queue. Raw fitness samples are never shown; operators see how many there were.
 */
export async function registerBullBoard(app: FastifyInstance, queues: StageQueues, adminToken: string): Promise<void> {
  const adapters = STAGE_NAMES.flatMap((stage) => {
    const queue = new BullMQAdapter(queues.queue(stage), { description: STAGES[stage].description })
    const deadLetters = new BullMQAdapter(queues.deadLetterQueue(stage), {
      description: `Jobs of the ${stage} stage that failed for good: payload, error and attempts`,
    })
    if (STAGES[stage].carriesRawData) {
      queue.setFormatter('data', hideSamples)
      deadLetters.setFormatter('data', (entry: { payload?: unknown }) => ({ ...entry, payload: hideSamples(entry.payload) }))
    }
    return [queue, deadLetters]
  })
  const serverAdapter = new FastifyAdapter()
  serverAdapter.setBasePath(BULL_BOARD_PATH)
  createBullBoard({ queues: adapters, serverAdapter, options: { uiConfig: { boardTitle: 'FitStream' } } })
  await app.register(async (board) => {
    board.addHook('onRequest', requireToken(adminToken, { realm: 'FitStream admin', challenge: true }))
    await board.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH })
  })
}

function hideSamples(data: unknown): unknown {
  if (data === null || typeof data !== 'object' || !('samples' in data)) return data
  const samples = (data as { samples: unknown }).samples
  return { ...data, samples: Array.isArray(samples) ? `[${samples.length} raw samples hidden]` : '[hidden]' }
}
