import { beforeAll, describe, expect, it } from 'vitest'
import { recordsOf, type RegisteredUser } from '@fitstream/devstack'
import { useStack } from './system.js'

/**
 * Two fetcher processes share one Redis: every user-window is fetched once, nothing is lost and
 * nothing reaches the buyer twice.
 */
const USERS = 12
const TYPES = ['steps', 'heart_rate'] as const
const system = useStack('scale-out', { dataTypes: TYPES, backfillDays: 1, fetchers: 2, googleLatencyMs: 20, env: { FETCH_CONCURRENCY: '4' } })
const users: RegisteredUser[] = []

beforeAll(async () => {
  for (let i = 0; i < USERS; i++) users.push(await system.stack.registerUser({ seed: `scale-out-${i}`, dataTypes: TYPES }))
})

describe('two competing fetchers', () => {
  it('fetch every user-window exactly once between them, and the buyer receives every record once', async () => {
    const state = async (id: string) => (await system.stack.api('GET', `/users/${id}`)).body as { fetchedUntil: string | null }
    await expect.poll(async () => (await Promise.all(users.map((u) => state(u.userId)))).every((s) => s.fetchedUntil !== null), { timeout: 60_000 }).toBe(true)

    // One day of history, one window, so one aggregate request per user across both fetchers.
    const byUser = system.stack.google.stats.aggregateRequestsByUser
    expect(users.map((u) => byUser[u.google.googleId])).toEqual(users.map(() => 1))

    const completed = await Promise.all(
      ['fetcher-1', 'fetcher-2'].map(async (label) => {
        const text = await (await fetch(`${system.stack.service(label).url}/metrics`)).text()
        return Number(/fitstream_jobs_completed_total\{queue="fetch"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0)
      }),
    )
    expect(completed.reduce((a, b) => a + b, 0)).toBe(USERS)
    expect(completed.every((n) => n > 0)).toBe(true)

    // Every user's data arrives, each record once.
    const records = () => system.subscriber.messages.flatMap((m) => recordsOf(m.content))
    await expect.poll(() => new Set(records().map((r) => r.pseudonym)).size, { timeout: 60_000 }).toBe(USERS)
    // A person's records can span release slots: wait for them all, then a slot more for any copy.
    await expect.poll(() => records().length, { timeout: 60_000 }).toBeGreaterThan(USERS * 24)
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    const ids = records().map((r) => `${r.id}@${r.revision}`)
    expect(new Set(ids).size).toBe(ids.length)
  })
})
