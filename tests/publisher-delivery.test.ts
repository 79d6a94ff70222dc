import { randomBytes } from 'node:crypto'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ServiceProcess, Subscriber } from '@fitstream/devstack'
import { StageQueues, createLogger, parseEnv, commonEnv, retryPolicies, type PublishJobData } from '@fitstream/shared'
import { freePort } from '@fitstream/streamr-local'
import { DeliveryJournal } from '../services/publisher/src/delivery-journal.js'
import { deliveryKeys, outgoingMessages } from '../services/publisher/src/messages.js'
import { cohorts, deliveries, keysOf, records, waitUntilPublished } from '../services/publisher/test/harness.js'
import { testRedis, uniquePrefix } from './helpers.js'
import { usePublisherHarness } from './system.js'

/**
 * The publisher against a real local Streamr network, as separate processes: what a buyer's
 * subscriber receives when the chain's RPC goes away, when a stream is missing, when the publisher
 * is stopped mid-batch, and when it is killed mid-batch and restarted.
 */
let subscriber: Subscriber
let publisher: ServiceProcess
let rpc: RpcProxy
let publisherEnv: Record<string, string>
// Registered before the harness's hooks, so it runs after them: the proxy closes once the publishers have stopped.
afterAll(async () => {
  await rpc?.close()
})
const system = usePublisherHarness('publisher-delivery', {
  retryEnv: { PUBLISH_ATTEMPTS: '20', RETRY_BACKOFF_MS: '200' },
  provision: (harness) => ['--types', 'steps,heart_rate', '--partitions', '2', '--grant-subscribe', harness.buyer.address],
  failureLog: () => `publisher log:\n${publisher?.tail(30)}\nsubscriber errors:\n${subscriber?.errors.slice(-20).join('\n')}\n`,
})
const { prefix, redis, queues } = system

beforeAll(async () => {
  rpc = await RpcProxy.start(new URL(system.harness.network.rpcUrl))
  publisherEnv = system.publisherEnv({
    PUBLISH_ATTEMPTS: '20',
    RETRY_BACKOFF_MS: '200',
    // Small messages, so that one job is a batch of many messages.
    MAX_MESSAGE_BYTES: '1024',
    PUBLISH_LOCK_MS: '2000',
    // A killed or stalled process's job is handed on within seconds rather than a minute.
    STALLED_CHECK_MS: '2000',
    PUBLISH_CONCURRENCY: '2',
    STREAMR_RPC_URL: rpc.url,
    // Generous: the machine running the tests may be busy, and a message sent before the
    // subscriber's node is a neighbour reaches nobody (live streams).
    STREAMR_JOIN_TIMEOUT_MS: '30000',
    XDG_DATA_HOME: system.harness.dataDir(),
  })
  subscriber = await system.harness.startSubscriber(system.harness.buyer.privateKey, [
    system.harness.streamId('steps'),
    system.harness.streamId('steps', true),
    system.harness.streamId('heart_rate'),
  ])
  publisher = await system.harness.startPublisher(publisherEnv)
})

function expectEachDeliveredOnce(job: PublishJobData): void {
  const counts = deliveries(subscriber)
  const keys = keysOf(job)
  expect(keys.filter((key) => counts.get(key) === undefined)).toEqual([])
  expect(keys.filter((key) => (counts.get(key) ?? 0) > 1)).toEqual([])
}

async function publishJob(jobId: string, job: PublishJobData): Promise<void> {
  await queues.add('publish', job, { jobId })
}

describe('publisher delivery', () => {
  it('waits out an unreachable chain RPC with retries and then delivers everything once', async () => {
    // Every stream the tests use, so that the buyer's node has found the publisher on each and holds
    // each stream's key before anything is broken.
    const warmUp = { syncId: 'warm-up', records: [...records('steps', 3), ...records('heart_rate', 3)], cohorts: cohorts('steps', 2) }
    await publishJob('warm-up', warmUp)
    await waitUntilPublished(redis, prefix, 'warm-up', 60_000)
    await subscriber.waitFor(() => keysOf(warmUp).every((key) => deliveries(subscriber).has(key)), 60_000)

    await rpc.down()
    // Past the permission cache, so the publish must ask the chain.
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    const job = { syncId: 'rpc-outage', records: records('heart_rate', 20), cohorts: [] }
    await publishJob('rpc-outage', job)
    await expect
      .poll(() => publisher.lines.some((l) => l.includes('"jobId":"rpc-outage"') && l.includes('will retry')), { timeout: 30_000, interval: 200 })
      .toBe(true)
    expect(await queues.queue('publish').getJobState('rpc-outage')).not.toBe('failed')
    await rpc.up()
    await waitUntilPublished(redis, prefix, 'rpc-outage', 30_000)
    await subscriber.waitFor(() => keysOf(job).every((key) => deliveries(subscriber).has(key)), 20_000)
    expectEachDeliveredOnce(job)
    expect(await queues.deadLetterQueue('publish').getJobCountByTypes('waiting', 'completed', 'active')).toBe(0)
  }, 120_000)

  it('dead-letters a job for a stream that does not exist, with the reason', async () => {
    await publishJob('no-stream', { syncId: 'no-stream', records: records('weight', 2), cohorts: [] })
    await expect
      .poll(async () => (await queues.deadLetterQueue('publish').getJobs(['waiting', 'completed']))[0]?.data, { timeout: 30_000, interval: 200 })
      .toBeDefined()
    const [letter] = await queues.deadLetterQueue('publish').getJobs(['waiting', 'completed'])
    expect(letter?.data).toMatchObject({ jobId: 'no-stream', permanent: true, attemptsMade: 1 })
    expect(letter?.data.error.message).toMatch(/fitness\/weight.*does not exist/)
  }, 60_000)

  it('drains the job in flight on SIGTERM, then exits cleanly', async () => {
    const job = { syncId: 'drain', records: [...records('steps', 200), ...records('heart_rate', 200)], cohorts: cohorts('steps', 30) }
    await publishJob('drain', job)
    await subscriber.waitFor(() => keysOf(job).some((key) => deliveries(subscriber).has(key)), 30_000)
    expect(await publisher.stop()).toBe(0)
    expect(await new DeliveryJournal(redis, prefix).isDone('drain')).toBe(true)
    expect(await queues.queue('publish').getActiveCount()).toBe(0)
    expect(publisher.lines.some((l) => l.includes('"shut down"'))).toBe(true)
    // It had just published: its node stayed up for the last messages, no longer than the flush.
    expect(flushOnStop(publisher)).toBeGreaterThan(0)
    expect(flushOnStop(publisher)).toBeLessThanOrEqual(10_000)
    await subscriber.waitFor(() => keysOf(job).every((key) => deliveries(subscriber).has(key)), 20_000)
    expectEachDeliveredOnce(job)
    publisher = await system.harness.startPublisher(publisherEnv, 'publisher-2')
  }, 120_000)

  it('stops without holding its node up when it has published nothing (a rolling deploy of an idle publisher waits for nothing)', async () => {
    const idle = await system.harness.startPublisher(publisherEnv, 'publisher-idle')
    expect(await idle.stop()).toBe(0)
    expect(idle.lines.some((l) => l.includes('"shut down"'))).toBe(true)
    expect(flushOnStop(idle)).toBeUndefined()
  }, 60_000)

  it('after a kill -9 mid-batch and a restart, delivers every record exactly once', async () => {
    const job = { syncId: 'crash', records: [...records('steps', 300), ...records('steps', 300), ...records('heart_rate', 300)], cohorts: cohorts('steps', 40) }
    const keys = new Set(keysOf(job))
    const received = (): string[] => [...deliveries(subscriber).keys()].filter((key) => keys.has(key))
    // The controlled point: killed once part of the batch has reached the buyer.
    const killed = new Promise<void>((resolve) =>
      subscriber.onMessage(() => {
        if (received().length >= 60) resolve()
      }),
    )
    await publishJob('crash', job)
    await killed
    await publisher.kill()
    const before = received().length
    expect(before).toBeGreaterThan(0)
    expect(before).toBeLessThan(keys.size)

    // The two windows a crash leaves between what reached the buyer and the notes in Redis, at
    // their worst:
    // - published but not noted: forget the notes of the last messages that did reach the buyer;
    // - noted but never sent (publish() resolves once the local node has a message, and the node
    //   died with it): note messages the killed process had not even begun to publish.
    const publishedKey = `${prefix}:publisher:job:crash:published`
    const noted = new Set(await redis.smembers(publishedKey))
    const unnote = received()
      .slice(-30)
      .filter((key) => noted.has(key))
    expect(unnote.length).toBeGreaterThan(0)
    await redis.srem(publishedKey, ...unnote)
    const outgoing = outgoingMessages(job, Number(publisherEnv.MAX_MESSAGE_BYTES))
    const lastNoted = outgoing.findLastIndex((message) => deliveryKeys(message).every((key) => noted.has(key)))
    // The message after the last noted one may have been in flight; the ones after it were not.
    const neverSent = outgoing.slice(lastNoted + 2, lastNoted + 7).flatMap(deliveryKeys)
    expect(neverSent.length).toBeGreaterThan(0)
    expect(neverSent.filter((key) => deliveries(subscriber).has(key))).toEqual([])
    await redis.sadd(publishedKey, ...neverSent)

    publisher = await system.harness.startPublisher(publisherEnv, 'publisher-3')
    // BullMQ hands a dead worker's job on after its lock has expired and two stalled-job checks.
    await waitUntilPublished(redis, prefix, 'crash', 150_000)
    await subscriber.waitFor(() => received().length === keys.size, 30_000)
    // Give any duplicate time to arrive before checking that none did.
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    expectEachDeliveredOnce(job)
    const summary = publisher.lines.find((l) => l.includes('"jobId":"crash"') && l.includes('records published'))
    // The restarted process took the lease over, so it sent the noted messages again (the buyer's
    // node dropped those it had) rather than skipping them.
    const { alreadyPublished, republished, messages } = JSON.parse(summary!) as { alreadyPublished: number; republished: number; messages: number }
    expect(alreadyPublished).toBe(0)
    expect(republished).toBeGreaterThan(0)
    expect(republished).toBeLessThan(messages)
  }, 240_000)

  it('shares the work between two publisher processes, and delivers every record exactly once when one stalls and the other takes its job over', async () => {
    // A second process with the same key and key store, as `docker compose up --scale publisher=2` runs it.
    const second = await system.harness.startPublisher(publisherEnv, 'publisher-b')
    try {
      // Jobs taken in turn by one process, the other, and the first again (the idle one stopped
      // with SIGSTOP), all on one person's partition: a message chain given back by one process
      // must not be leased to the other, or the first would link its next message on that chain to
      // a stale one, which subscribers' nodes refuse.
      const pseudonym = randomBytes(16).toString('hex')
      const turns = [publisher, second, publisher, second].map((by, i) => ({
        by,
        id: `turn-${i}`,
        job: { syncId: `turn-${i}`, records: [...records('steps', 12, pseudonym), ...records('heart_rate', 6, pseudonym)], cohorts: cohorts('steps', 2) },
      }))
      for (const { by, id, job } of turns) {
        const idle = by === publisher ? second : publisher
        process.kill(idle.pid!, 'SIGSTOP')
        try {
          await publishJob(id, job)
          await waitUntilPublished(redis, prefix, id, 60_000)
        } finally {
          process.kill(idle.pid!, 'SIGCONT')
        }
        // The job is marked done in Redis just before its process logs it: give the line time to arrive.
        await expect
          .poll(() => by.lines.some((l) => l.includes(`"jobId":"${id}"`) && l.includes('records published')), { timeout: 5_000, interval: 50 })
          .toBe(true)
      }
      const all = turns.flatMap(({ job }) => keysOf(job))
      await subscriber.waitFor(() => all.every((key) => deliveries(subscriber).has(key)), 30_000).catch(() => undefined)
      expect(all.filter((key) => !deliveries(subscriber).has(key))).toEqual([])

      // The process publishing a large job stalls (SIGSTOP) past its job lock: the other takes the
      // job over and finishes it. The stalled one, woken, finds its lease taken, stops publishing
      // and exits 75 so that it is restarted with a clean client.
      const job = { syncId: 'shared-stall', records: [...records('steps', 300), ...records('heart_rate', 300)], cohorts: cohorts('steps', 20) }
      const keys = new Set(keysOf(job))
      const received = (): number => [...deliveries(subscriber).keys()].filter((key) => keys.has(key)).length
      const started = new Promise<void>((resolve) => subscriber.onMessage(() => received() >= 40 && resolve()))
      await publishJob('shared-stall', job)
      await started
      const holder = await redis.hget(`${prefix}:publisher:job:shared-stall`, 'owner')
      const holds = (p: ServiceProcess): boolean => p.lines.some((l) => l.includes('publishing as') && l.includes(`"instance":"${holder}"`))
      expect([holds(publisher), holds(second)].filter(Boolean)).toHaveLength(1)
      const [stalled, survivor] = holds(publisher) ? [publisher, second] : [second, publisher]
      process.kill(stalled.pid!, 'SIGSTOP')
      try {
        expect(received()).toBeLessThan(keys.size)
        await waitUntilPublished(redis, prefix, 'shared-stall', 150_000)
        await subscriber.waitFor(() => received() === keys.size, 30_000)
      } finally {
        process.kill(stalled.pid!, 'SIGCONT')
      }
      await expect.poll(() => stalled.running, { timeout: 60_000, interval: 200 }).toBe(false)
      expect(await stalled.stop()).toBe(75)
      expect(stalled.lines.some((l) => l.includes('"jobId":"shared-stall"') && l.includes('restarting, so that'))).toBe(true)
      expect(survivor.lines.some((l) => l.includes('"jobId":"shared-stall"') && l.includes('records published'))).toBe(true)
      // Give any duplicate time to arrive before checking that none did.
      await new Promise((resolve) => setTimeout(resolve, 2_000))
      for (const { job: done } of turns) expectEachDeliveredOnce(done)
      expectEachDeliveredOnce(job)
      const letters = await queues.deadLetterQueue('publish').getJobs(['waiting', 'completed', 'active'])
      expect(letters.map((l) => l.data.jobId).filter((id) => id === 'shared-stall' || id.startsWith('turn-'))).toEqual([])
      publisher = survivor
    } finally {
      if (publisher !== second) await second.stop()
    }
  }, 300_000)

  it('dead-letters a job whose key has no PUBLISH permission, with the reason', async () => {
    const otherPrefix = uniquePrefix('publisher-nopermission')
    const other = testRedis(otherPrefix)
    const otherQueues = new StageQueues({
      connection: other.redis,
      prefix: otherPrefix,
      retry: retryPolicies(parseEnv(commonEnv, {})),
      logger: createLogger('test', 'silent'),
    })
    try {
      await system.harness.startPublisher(
        {
          ...publisherEnv,
          QUEUE_PREFIX: otherPrefix,
          STREAMR_PRIVATE_KEY: system.harness.network.accounts[4]!.privateKey,
          STREAMR_STREAM_OWNER: system.harness.seller.address,
          XDG_DATA_HOME: system.harness.dataDir(),
        },
        'publisher-without-permission',
      )
      await otherQueues.add('publish', { syncId: 'no-permission', records: records('steps', 2), cohorts: [] }, { jobId: 'no-permission' })
      await expect
        .poll(async () => (await otherQueues.deadLetterQueue('publish').getJobs(['waiting', 'completed']))[0]?.data, { timeout: 30_000, interval: 200 })
        .toMatchObject({
          jobId: 'no-permission',
          permanent: true,
          error: { code: 'FST_ERR_STREAMR_MISSING_PERMISSION' },
        })
    } finally {
      await otherQueues.close()
      await other.cleanup()
    }
  }, 90_000)
})

/** A TCP relay to anvil that the test can take down and bring back: the chain's RPC "going away". */
class RpcProxy {
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()

  private constructor(
    private readonly target: URL,
    private readonly port: number,
  ) {}

  static async start(target: URL): Promise<RpcProxy> {
    const proxy = new RpcProxy(target, await freePort())
    await proxy.up()
    return proxy
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  async up(): Promise<void> {
    if (this.server !== undefined) return
    const server = createServer((client) => {
      const upstream = connect(Number(this.target.port), this.target.hostname)
      for (const socket of [client, upstream]) {
        this.sockets.add(socket)
        socket.on('close', () => this.sockets.delete(socket))
        socket.on('error', () => socket.destroy())
      }
      client.pipe(upstream).pipe(client)
    })
    this.server = server
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve))
  }

  async down(): Promise<void> {
    const server = this.server
    this.server = undefined
    for (const socket of this.sockets) socket.destroy()
    if (server !== undefined) await new Promise((resolve) => server.close(resolve))
  }

  close(): Promise<void> {
    return this.down()
  }
}

/** How long a stopped publisher kept its network node up for its last messages (undefined: not at all). */
function flushOnStop(service: ServiceProcess): number | undefined {
  const line = service.lines.find((l) => l.includes('keeping the network node up for the last messages'))
  return line === undefined ? undefined : (JSON.parse(line) as { flushMs: number }).flushMs
}
