import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Job } from 'bullmq'
import { Stack, type RegisteredUser } from '@fitstream/devstack'
import type { DeadLetter } from '@fitstream/shared'
import { DeliveryCheck } from './delivery.js'
import { redisUrl, reportFigures, uniquePrefix } from './helpers.js'
import { expectNoLeaks } from './secrets.js'

/**
 * Google misbehaving at length, through the real googleapis client: a storm of 429s, a run of 5xx
 * answers (five minutes by default), and answers too slow to wait for. Every sync completes in the
 * end, no attempt is spent beyond the retry policy, and only permanent errors are dead-lettered.
 */
const TYPES = ['steps', 'calories', 'heart_rate'] as const
/** Length of the 5xx run; FITSTREAM_GOOGLE_OUTAGE_SECONDS shortens it for a quick local run. */
const OUTAGE_SECONDS = Number(process.env.FITSTREAM_GOOGLE_OUTAGE_SECONDS ?? 300)
const OUTAGE_THRESHOLD = 10
const OUTAGE_PAUSE_MS = 15_000

let stack: Stack
let check: DeliveryCheck

beforeAll(async () => {
  check = await DeliveryCheck.start({
    redisUrl: redisUrl(),
    prefix: uniquePrefix('google-faults'),
    backfillDays: 1,
    googleLatencyMs: 20,
    // Production's retry policy (FETCH_ATTEMPTS=6), with a shorter first backoff.
    env: { RETRY_BACKOFF_MS: '1000' },
    serviceEnv: {
      fetcher: {
        GOOGLE_TIMEOUT_MS: '1000',
        GOOGLE_OUTAGE_THRESHOLD: String(OUTAGE_THRESHOLD),
        GOOGLE_OUTAGE_PAUSE_MS: String(OUTAGE_PAUSE_MS),
      },
    },
  })
  stack = check.stack
})

afterAll(async () => {
  await stack?.stop()
})

/** The fetcher's counters that say how attempts were spent. */
async function fetcherCounters(): Promise<{ retried: number; deferred: number; outageDeferrals: number; deadLettered: number }> {
  const text = await (await fetch(`${stack.service('fetcher').url}/metrics`)).text()
  const sum = (pattern: RegExp): number => [...text.matchAll(pattern)].reduce((n, match) => n + Number(match[1]), 0)
  return {
    retried: sum(/^fitstream_jobs_retried_total\{[^}]*queue="fetch"[^}]*\} (\S+)$/gm),
    deferred: sum(/^fitstream_jobs_deferred_total\{[^}]*queue="fetch"[^}]*\} (\S+)$/gm),
    outageDeferrals: sum(/^fitstream_google_outage_deferrals_total(?:\{[^}]*\})? (\S+)$/gm),
    deadLettered: sum(/^fitstream_jobs_dead_lettered_total\{[^}]*queue="fetch"[^}]*\} (\S+)$/gm),
  }
}

async function register(label: string, count: number): Promise<RegisteredUser[]> {
  const users = await Promise.all(Array.from({ length: count }, (_, i) => stack.registerUser({ seed: `${label}-${i}`, dataTypes: TYPES })))
  check.add(...users)
  return users
}

async function fetchDeadLetters(): Promise<DeadLetter[]> {
  return ((await stack.queues().deadLetterQueue('fetch').getJobs(['waiting'])) as Job<DeadLetter>[]).map((job) => job.data)
}

function delta<T extends Record<string, number>>(after: T, before: T): T {
  return Object.fromEntries(Object.entries(after).map(([key, value]) => [key, value - before[key]!])) as T
}

describe('Google faults', () => {
  it('a storm of 429s with Retry-After: every sync completes and no attempt is used', async () => {
    const before = await fetcherCounters()
    const requestsBefore = stack.google.stats.aggregateRequests
    stack.google.injectFault({ route: 'aggregate', status: 429, times: 40, retryAfterSeconds: 1, reason: 'rateLimitExceeded' })
    await register('storm-429', 8)
    const report = await check.waitComplete(120_000)
    const spent = delta(await fetcherCounters(), before)
    reportFigures('google: 429 storm', { ...report, answered429: 40, requests: stack.google.stats.aggregateRequests - requestsBefore, ...spent })
    expect(report).toMatchObject({ usersComplete: report.users, duplicates: 0, unexpected: 0 })
    expect(spent.retried).toBe(0)
    expect(spent.deferred).toBeGreaterThan(0)
    expect(await fetchDeadLetters()).toEqual([])
  }, 180_000)

  it(
    `${OUTAGE_SECONDS} s of 5xx answers: fetches wait without using attempts, then every sync completes; a permanent error is dead-lettered`,
    async () => {
      const before = await fetcherCounters()
      const requestsBefore = stack.google.stats.aggregateRequests
      stack.google.injectFault({ route: 'aggregate', status: 503, times: 1_000_000, reason: 'backendError' })
      const startedAt = Date.now()
      await register('outage-5xx', 10)
      // A user who did not grant heart rate: Google answers 403 once it is back, a permanent error.
      const withoutScope = stack.google.addUser({ seed: 'outage-no-scope', scopes: ['https://www.googleapis.com/auth/fitness.activity.read'] })
      const registered = await stack.api('POST', '/users', { refreshToken: withoutScope.refreshToken, dataTypes: ['heart_rate'] })
      expect(registered.status).toBe(201)
      const withoutScopeId = (registered.body as { id: string }).id

      await new Promise((resolve) => setTimeout(resolve, OUTAGE_SECONDS * 1_000 - (Date.now() - startedAt)))
      const during = delta(await fetcherCounters(), before)
      const requestsDuring = stack.google.stats.aggregateRequests - requestsBefore
      // Nothing gave up while Google was down.
      expect(await fetchDeadLetters()).toEqual([])
      stack.google.clearFaults()
      const recoveredAt = Date.now()

      const report = await check.waitComplete(180_000)
      const recoveryMs = Date.now() - recoveredAt
      const spent = delta(await fetcherCounters(), before)
      const dead = await fetchDeadLetters()
      reportFigures('google: 5xx run', { outageSeconds: OUTAGE_SECONDS, ...report, requestsDuringOutage: requestsDuring, during, after: spent, recoveryMs })
      expect(report).toMatchObject({ usersComplete: report.users, duplicates: 0, unexpected: 0 })
      expect(report.distinct).toBe(report.expected)
      // Attempts: only the failures before the outage was recognised, at most the threshold in all.
      expect(during.retried).toBeLessThanOrEqual(OUTAGE_THRESHOLD)
      expect(during.outageDeferrals).toBeGreaterThan(0)
      expect(dead).toHaveLength(1)
      expect(dead[0]).toMatchObject({ permanent: true, error: { code: 'FST_ERR_GOOGLE_REJECTED' }, payload: { userId: withoutScopeId } })
      await stack.queues().deadLetterQueue('fetch').drain(true)
    },
    (OUTAGE_SECONDS + 300) * 1_000,
  )

  it('answers slower than the timeout: retried, and every sync completes once Google is fast again', async () => {
    const before = await fetcherCounters()
    stack.google.setLatency(3_000)
    await register('timeouts', 6)
    await new Promise((resolve) => setTimeout(resolve, 20_000))
    const during = delta(await fetcherCounters(), before)
    stack.google.setLatency(20)
    const report = await check.waitComplete(180_000)
    const spent = delta(await fetcherCounters(), before)
    reportFigures('google: timeouts', { ...report, during, after: spent })
    expect(report).toMatchObject({ usersComplete: report.users, duplicates: 0, unexpected: 0 })
    expect(during.retried + during.deferred).toBeGreaterThan(0)
    expect(await fetchDeadLetters()).toEqual([])
  }, 300_000)

  it('leaves no secret in any log line, job payload, dead letter or metric', () => expectNoLeaks(stack, check.users))
})
