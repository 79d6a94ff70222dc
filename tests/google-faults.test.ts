import { describe, expect, it } from 'vitest'
import type { Job } from 'bullmq'
import type { RegisteredUser } from '@fitstream/devstack'
import type { DeadLetter } from '@fitstream/shared'
import { reportFigures, tierLength } from './helpers.js'
import { expectNoLeaks } from './secrets.js'
import { useStack } from './system.js'

/**
 * Google misbehaving at length, through the real googleapis client: a storm of 429s, a run of 5xx
 * answers (20 s in the default tier, five minutes in the soak tier), and answers too slow to wait
 * for. Every sync completes in the end, no attempt is spent beyond the retry policy, and only
 * permanent errors are dead-lettered.
 */
const TYPES = ['steps', 'calories', 'heart_rate'] as const
/** Length of the 5xx run; FITSTREAM_GOOGLE_OUTAGE_SECONDS sets it for a local run. */
const OUTAGE_SECONDS = tierLength({ fast: 10, soak: 300 }, process.env.FITSTREAM_GOOGLE_OUTAGE_SECONDS)
const FETCH_ATTEMPTS = 6
/** Production's retry policy (FETCH_ATTEMPTS=6) with a shorter first backoff, shorter still in the default tier. */
const RETRY_BACKOFF_MS = tierLength({ fast: 100, soak: 1_000 })
/** Every attempt's backoff added up: what plain retries would survive of an outage. */
const RETRY_BUDGET_MS = RETRY_BACKOFF_MS * (2 ** (FETCH_ATTEMPTS - 1) - 1)
const OUTAGE_THRESHOLD = 10
const OUTAGE_PAUSE_MS = tierLength({ fast: 1_500, soak: 15_000 })
/** 429 answers in the storm: each pauses every fetch for its Retry-After (a project quota), one after another. */
const STORM_429S = tierLength({ fast: 12, soak: 40 })

const system = useStack('google-faults', {
  dataTypes: TYPES,
  backfillDays: 1,
  googleLatencyMs: 20,
  env: { FETCH_ATTEMPTS: String(FETCH_ATTEMPTS), RETRY_BACKOFF_MS: String(RETRY_BACKOFF_MS) },
  serviceEnv: {
    fetcher: {
      GOOGLE_TIMEOUT_MS: '1000',
      GOOGLE_OUTAGE_THRESHOLD: String(OUTAGE_THRESHOLD),
      GOOGLE_OUTAGE_PAUSE_MS: String(OUTAGE_PAUSE_MS),
    },
  },
})

/** The fetcher's counters that say how attempts were spent. */
async function fetcherCounters(): Promise<{ retried: number; deferred: number; outageDeferrals: number; deadLettered: number }> {
  const text = await (await fetch(`${system.stack.service('fetcher').url}/metrics`)).text()
  const sum = (pattern: RegExp): number => [...text.matchAll(pattern)].reduce((n, match) => n + Number(match[1]), 0)
  return {
    retried: sum(/^fitstream_jobs_retried_total\{[^}]*queue="fetch"[^}]*\} (\S+)$/gm),
    deferred: sum(/^fitstream_jobs_deferred_total\{[^}]*queue="fetch"[^}]*\} (\S+)$/gm),
    outageDeferrals: sum(/^fitstream_google_outage_deferrals_total(?:\{[^}]*\})? (\S+)$/gm),
    deadLettered: sum(/^fitstream_jobs_dead_lettered_total\{[^}]*queue="fetch"[^}]*\} (\S+)$/gm),
  }
}

async function register(label: string, count: number): Promise<RegisteredUser[]> {
  const users = await Promise.all(Array.from({ length: count }, (_, i) => system.stack.registerUser({ seed: `${label}-${i}`, dataTypes: TYPES })))
  system.check.add(...users)
  return users
}

async function fetchDeadLetters(): Promise<DeadLetter[]> {
  return ((await system.stack.queues().deadLetterQueue('fetch').getJobs(['waiting'])) as Job<DeadLetter>[]).map((job) => job.data)
}

function delta<T extends Record<string, number>>(after: T, before: T): T {
  return Object.fromEntries(Object.entries(after).map(([key, value]) => [key, value - before[key]!])) as T
}

describe('Google faults', () => {
  it('a storm of 429s with Retry-After: every sync completes and no attempt is used', async () => {
    const before = await fetcherCounters()
    const requestsBefore = system.stack.google.stats.aggregateRequests
    system.stack.google.injectFault({ route: 'aggregate', status: 429, times: STORM_429S, retryAfterSeconds: 1, reason: 'rateLimitExceeded' })
    await register('storm-429', 8)
    const report = await system.check.waitComplete(120_000)
    const spent = delta(await fetcherCounters(), before)
    reportFigures('google: 429 storm', { ...report, answered429: STORM_429S, requests: system.stack.google.stats.aggregateRequests - requestsBefore, ...spent })
    expect(report).toMatchObject({ usersComplete: report.users, duplicates: 0, unexpected: 0 })
    expect(spent.retried).toBe(0)
    expect(spent.deferred).toBeGreaterThan(0)
    expect(await fetchDeadLetters()).toEqual([])
  }, 180_000)

  it(
    `${OUTAGE_SECONDS} s of 5xx answers: fetches wait without using attempts, then every sync completes; a permanent error is dead-lettered`,
    async () => {
      // Shorter than what the retries alone would wait out, it would prove nothing.
      expect(OUTAGE_SECONDS * 1_000).toBeGreaterThan(2 * RETRY_BUDGET_MS)
      const before = await fetcherCounters()
      const requestsBefore = system.stack.google.stats.aggregateRequests
      system.stack.google.injectFault({ route: 'aggregate', status: 503, times: 1_000_000, reason: 'backendError' })
      const startedAt = Date.now()
      await register('outage-5xx', 10)
      // A user who did not grant heart rate: Google answers 403 once it is back, a permanent error.
      const withoutScope = system.stack.google.addUser({ seed: 'outage-no-scope', scopes: ['https://www.googleapis.com/auth/fitness.activity.read'] })
      const registered = await system.stack.api('POST', '/users', { refreshToken: withoutScope.refreshToken, dataTypes: ['heart_rate'] })
      expect(registered.status).toBe(201)
      const withoutScopeId = (registered.body as { id: string }).id

      await new Promise((resolve) => setTimeout(resolve, OUTAGE_SECONDS * 1_000 - (Date.now() - startedAt)))
      const during = delta(await fetcherCounters(), before)
      const requestsDuring = system.stack.google.stats.aggregateRequests - requestsBefore
      // Nothing gave up while Google was down.
      expect(await fetchDeadLetters()).toEqual([])
      system.stack.google.clearFaults()
      const recoveredAt = Date.now()

      const report = await system.check.waitComplete(180_000)
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
      await system.stack.queues().deadLetterQueue('fetch').drain(true)
    },
    (OUTAGE_SECONDS + 300) * 1_000,
  )

  it('answers slower than the timeout: retried, and every sync completes once Google is fast again', async () => {
    const before = await fetcherCounters()
    system.stack.google.setLatency(3_000)
    await register('timeouts', 6)
    // Slow until the fetcher has given up waiting on an answer at least once.
    await expect
      .poll(
        async () => {
          const now = delta(await fetcherCounters(), before)
          return now.retried + now.deferred
        },
        { timeout: 60_000, interval: 250 },
      )
      .toBeGreaterThan(0)
    const during = delta(await fetcherCounters(), before)
    system.stack.google.setLatency(20)
    const report = await system.check.waitComplete(180_000)
    const spent = delta(await fetcherCounters(), before)
    reportFigures('google: timeouts', { ...report, during, after: spent })
    expect(report).toMatchObject({ usersComplete: report.users, duplicates: 0, unexpected: 0 })
    expect(during.retried + during.deferred).toBeGreaterThan(0)
    expect(await fetchDeadLetters()).toEqual([])
  }, 300_000)

  it('leaves no secret in any log line, job payload, dead letter or metric', () => expectNoLeaks(system.stack, system.check.users))
})
