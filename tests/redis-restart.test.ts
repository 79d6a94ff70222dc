import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { COMPOSE_REDIS_ARGS, RedisServer, Stack } from '@fitstream/devstack'
import { freePort } from '@fitstream/streamr-local'
import { DeliveryCheck } from './delivery.js'
import { reportFigures, uniquePrefix } from './helpers.js'
import { expectNoLeaks } from './secrets.js'

/**
 * Redis going away under load, on a Redis of this test's own with AOF on: restarted as compose
 * restarts it (SIGTERM), then crashed (SIGKILL) with every write synced to the AOF. The services
 * are left alone: they must notice (readiness red), reconnect by themselves (green) and lose nothing.
 */
const TYPES = ['steps', 'calories', 'heart_rate'] as const
const OUTAGE_MS = 2_000

let redis: RedisServer
let stack: Stack
let check: DeliveryCheck

beforeAll(async () => {
  redis = await RedisServer.start([...COMPOSE_REDIS_ARGS, '--appendfsync', 'always'])
  check = await DeliveryCheck.start({
    redisUrl: redis.url,
    prefix: uniquePrefix('redis-restart'),
    dataTypes: TYPES,
    backfillDays: 1,
    googleLatencyMs: 150,
    tokenServicePort: await freePort(),
    env: { JOB_LOCK_MS: '3000', STALLED_CHECK_MS: '1000', RETRY_BACKOFF_MS: '500' },
    serviceEnv: { publisher: { PUBLISH_LOCK_MS: '3000' } },
  })
  stack = check.stack
})

afterAll(async () => {
  await stack?.stop()
  await redis?.close()
})

/** Polls every service's /readyz until stopped; remembers each answer. */
function watchReadiness(): { stop: () => Promise<Record<string, string[]>> } {
  const seen: Record<string, string[]> = Object.fromEntries(stack.services.map((s) => [s.label, []]))
  let running = true
  const loops = stack.services.map(async (service) => {
    while (running) {
      const state = await fetch(`${service.url}/readyz`, { signal: AbortSignal.timeout(3_000) })
        .then((response) => (response.ok ? 'ready' : 'not ready'))
        .catch(() => 'no answer')
      const states = seen[service.label]!
      if (states.at(-1) !== state) states.push(state)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })
  return {
    stop: async () => {
      running = false
      await Promise.all(loops)
      return seen
    },
  }
}

async function outage(mode: 'restart' | 'crash', label: string): Promise<object> {
  const users = await Promise.all(Array.from({ length: 12 }, (_, i) => stack.registerUser({ seed: `${label}-${i}`, dataTypes: TYPES })))
  check.add(...users)
  // Mid-load: some users' data is on its way, some is not fetched yet.
  await check.subscriber.waitFor(() => check.report().received > 0, 60_000)
  const readiness = watchReadiness()
  const downAt = Date.now()
  await (mode === 'restart' ? redis.stop() : redis.kill())
  await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS))
  await redis.start()
  const upAt = Date.now()
  await Promise.all(stack.services.map((service) => service.waitReady(60_000)))
  const readyAfterMs = Date.now() - upAt
  const states = await readiness.stop()
  for (const [service, seen] of Object.entries(states)) {
    expect(seen, `${service} readiness`).toContain('not ready')
    expect(seen.at(-1), `${service} readiness`).toBe('ready')
  }
  const report = await check.waitComplete(180_000)
  expect(report).toMatchObject({ usersComplete: report.users, duplicates: 0, unexpected: 0 })
  expect(report.distinct).toBe(report.expected)
  for (const stage of ['sync', 'fetch', 'anonymize', 'publish'] as const) {
    expect((await stack.queues().deadLetterQueue(stage).getJobs(['waiting'])).map((job) => job.data)).toEqual([])
  }
  // No process exited: each reconnected by itself.
  expect(stack.services.filter((service) => !service.running).map((service) => service.label)).toEqual([])
  return { ...report, outageMs: upAt - downAt, readyAfterMs, readiness: states }
}

describe('Redis outage under load', () => {
  it('a restart (SIGTERM, AOF on): services go unready, reconnect by themselves, nothing is lost or doubled', async () => {
    reportFigures('redis: restart', await outage('restart', 'redis-restart'))
  }, 300_000)

  it('a crash (SIGKILL, appendfsync always): the same', async () => {
    reportFigures('redis: crash', await outage('crash', 'redis-crash'))
  }, 300_000)

  it('leaves no secret in any log line, job payload, dead letter or metric', () => expectNoLeaks(stack, check.users))
})
