import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ServiceProcess } from '@fitstream/devstack'
import type { ReleasableRecord } from '@fitstream/shared'
import { records } from '../services/publisher/test/harness.js'
import { usePublisherHarness } from './system.js'

/**
 * The buyer's reference subscriber (examples/buyer/subscribe.mjs), run as a buyer runs it, against
 * FitStream's publisher on the local network. Delivery is at least once: the same record published
 * again (as after a publisher crash) reaches the buyer again, and so does an older revision. The
 * subscriber prints each record once per revision, and never one older than what it has.
 */
const SUBSCRIBE = fileURLToPath(new URL('../examples/buyer/subscribe.mjs', import.meta.url))
let publisher: ServiceProcess
let buyer: ChildProcess
const printed: { record: { id: string; revision: number }; pseudonym: string }[] = []
const dropped: string[] = []
const system = usePublisherHarness('network-buyer', {
  provision: (harness) => ['--types', 'steps', '--grant-subscribe', harness.buyer.address],
  failureLog: () => `publisher log:\n${publisher?.tail(30)}\ndropped:\n${dropped.join('\n')}\n`,
})
const { queues } = system

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} not seen after ${timeoutMs} ms (printed ${printed.length}, dropped ${dropped.length})`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

let jobs = 0
async function publish(recordsToSend: ReleasableRecord[]): Promise<void> {
  const jobId = `buyer-${++jobs}`
  await queues.add('publish', { syncId: jobId, records: recordsToSend, cohorts: [] }, { jobId })
}

beforeAll(async () => {
  publisher = await system.harness.startPublisher(
    system.publisherEnv({
      STREAMR_JOIN_TIMEOUT_MS: '30000',
      // Release slots, as production publishes (fitstream.records/2), short enough for a test.
      PUBLISH_SLOT_MS: '1500',
    }),
  )
  // The local network's SDK configuration; the subscriber sets the key from BUYER_PRIVATE_KEY itself.
  const network = await system.harness.network.clientConfig({ privateKey: system.harness.buyer.privateKey })
  buyer = spawn(process.execPath, [SUBSCRIBE, system.harness.streamId('steps')], {
    env: {
      PATH: process.env.PATH ?? '',
      XDG_DATA_HOME: system.harness.dataDir(),
      LOG_LEVEL: 'warn',
      BUYER_PRIVATE_KEY: system.harness.buyer.privateKey,
      STREAMR_CLIENT_CONFIG: JSON.stringify(network),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  createInterface({ input: buyer.stderr! }).on('line', (line) => {
    if (line.startsWith('dropped ')) dropped.push(line)
  })
  const ready = new Promise<void>((resolve, reject) => {
    buyer.once('exit', (code) => reject(new Error(`the subscriber exited (${code})`)))
    createInterface({ input: buyer.stdout! }).on('line', (line) => {
      const event = JSON.parse(line) as { event: string } & (typeof printed)[number]
      if (event.event === 'ready') resolve()
      else if (event.event === 'record') printed.push(event)
    })
  })
  await ready
})

afterAll(async () => {
  if (buyer !== undefined && buyer.exitCode === null) {
    const exited = new Promise((resolve) => buyer.once('exit', resolve))
    buyer.kill('SIGTERM')
    await exited
  }
})

describe("the buyer's reference subscriber", () => {
  it('prints each record once per revision, dropping copies and older revisions that reach it again', async () => {
    const day = records('steps', 4)
    const idRev = () => printed.map((p) => `${p.record.id}:${p.record.revision}`)
    await publish(day)
    await until(() => printed.length === 4, 60_000, 'the first four records')

    // The same records published again, as a publisher that crashed before noting them does.
    await publish(day)
    await until(() => dropped.length === 4, 60_000, 'the four copies dropped')

    // A correction, and then the old revision once more.
    const corrected = { ...day[0]!, values: { count: 999 }, revision: 1 }
    await publish([corrected])
    await until(() => printed.length === 5, 60_000, 'the correction')
    await publish([day[0]!])
    await until(() => dropped.length === 5, 60_000, 'the old revision dropped')

    expect(new Set(idRev())).toEqual(new Set([...day.map((r) => `${r.id}:0`), `${day[0]!.id}:1`]))
    expect(printed).toHaveLength(5)
    expect(printed.at(-1)).toMatchObject({ record: { id: day[0]!.id, revision: 1, values: { count: 999 } }, pseudonym: day[0]!.pseudonym })
    expect(dropped.at(-1)).toContain(`${day[0]!.id} revision 0: have revision 1`)
  }, 180_000)
})
