import { createBullBoard } from '@bull-board/api'
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter'
import { FastifyAdapter } from '@bull-board/fastify'
import type { Queue } from 'bullmq'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { STAGES, STAGE_NAMES, redactDeadLetter, redactPayload, type DeadLetter, type StageQueues } from '@fitstream/shared'
import { requireToken } from './auth.js'

export const BULL_BOARD_PATH = '/admin/queues'

/**
 * Bull Board at /admin/queues, behind the admin token: every stage's queue and its dead-letter
 * queue. Raw fitness samples are never shown; operators see how many there were.
 */
export async function registerBullBoard(
  app: FastifyInstance,
  queues: StageQueues,
  adminToken: string,
  /** Queues outside the stages to show too (the Data Union membership stage and its dead letters, when configured). */
  extra: readonly { readonly queue: Queue; readonly description: string; readonly readOnly?: boolean }[] = [],
): Promise<void> {
  const adapters = STAGE_NAMES.flatMap((stage, i) => {
    const queue = new BullMQAdapter(queues.queue(stage), { description: STAGES[stage].description, displayName: `${i + 1}. ${stage}` })
    // Read-only: a replay through the API (or `fitstream dlq replay`) keeps the job's history and never runs it twice.
    const deadLetters = new BullMQAdapter(queues.deadLetterQueue(stage), {
      description: `Jobs of the ${stage} stage that failed for good: payload, error and attempts. Replay or purge them with fitstream dlq.`,
      displayName: `${i + 1}. ${stage} · dead letters`,
      readOnlyMode: true,
    })
    if (STAGES[stage].holdsPersonalData) queue.setFormatter('data', (data: unknown) => redactPayload(stage, data))
    deadLetters.setFormatter('data', (letter: DeadLetter) => redactDeadLetter(letter))
    return [queue, deadLetters]
  })
  for (const { queue, description, readOnly } of extra) {
    adapters.push(new BullMQAdapter(queue, { description, displayName: queue.name, ...(readOnly === true ? { readOnlyMode: true } : {}) }))
  }
  const serverAdapter = new FastifyAdapter()
  serverAdapter.setBasePath(BULL_BOARD_PATH)
  createBullBoard({ queues: adapters, serverAdapter, options: { uiConfig: { boardTitle: 'FitStream' } } })
  await app.register(async (board) => {
    // Every answer, the 401 and the JSON API's too: the board has destructive buttons, so no other
    // site may frame it (clickjacking), and it runs only its own scripts.
    board.addHook('onSend', async (_request, reply) => {
      void reply
        .header('content-security-policy', BOARD_CSP)
        .header('x-frame-options', 'DENY')
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
    })
    board.addHook('onRequest', requireToken(adminToken, { realm: 'FitStream admin', challenge: true }))
    // A browser sends the Basic credentials it saved for the board with every request to it, a form
    // posted by another site's page too; changes must come from the board's own pages.
    board.addHook('onRequest', async (request, reply) => {
      if (!SAFE_METHODS.has(request.method) && fromAnotherOrigin(request)) {
        return reply.status(403).send({ error: 'Forbidden', message: 'the queue board takes changes from its own pages only' })
      }
    })
    await board.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH })
  })
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * The pages' policy, widened only by what the board's own bundle needs (its scripts, styles and
 * images from itself, its API calls, inline styles, its <base>). Its Google Fonts stylesheet is left
 * out: the board falls back to system fonts rather than telling Google who opens it.
 */
export const BOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'self'",
].join('; ')

/** Fetch Metadata where the browser sends it, else the Origin header; a client that is no browser sends neither. */
function fromAnotherOrigin(request: FastifyRequest): boolean {
  const site = request.headers['sec-fetch-site']
  if (site !== undefined) return site !== 'same-origin' && site !== 'none'
  const origin = request.headers.origin
  if (origin === undefined) return false
  return !URL.canParse(origin) || new URL(origin).host !== request.host
}
