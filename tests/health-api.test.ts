import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Stack, type RegisteredUser, type Subscriber } from '@fitstream/devstack'
import { HOUR, expectedRecords, type RecordContent } from './delivery.js'
import { redisUrl, uniquePrefix } from './helpers.js'

/**
 * A deployment on the Google Health API (`GOOGLE_DATA_API=health`), every service a process: a
 * person who granted Health API scopes is read through its roll-ups, never through Fit, and the
 * buyer receives the same records Fit would have given for the same data.
 */
let stack: Stack
let subscriber: Subscriber
let user: RegisteredUser

beforeAll(async () => {
  stack = await Stack.start({ redisUrl: redisUrl(), prefix: uniquePrefix('health-api'), backfillDays: 1, googleApi: 'health' })
  subscriber = await stack.startSubscriber()
  user = await stack.registerUser({ seed: 'health-api-user-1', dataTypes: ['steps', 'calories', 'heart_rate'] })
})

afterAll(async () => {
  await stack?.stop()
})

describe('a deployment on the Google Health API', () => {
  it('delivers a person’s records to the buyer, read through Health API roll-ups only', async () => {
    const state = async () => (await stack.api('GET', `/users/${user.userId}`)).body as { fetchedUntil: string | null; dataApi: string }
    await expect.poll(async () => (await state()).fetchedUntil, { timeout: 60_000, interval: 250 }).not.toBeNull()
    expect((await state()).dataApi).toBe('health')
    const end = Date.parse((await state()).fetchedUntil!)
    const expected = expectedRecords(user, end - 24 * HOUR, end)
    expect(expected.size).toBeGreaterThan(24)

    const count = (messages: readonly { content: unknown }[]) => messages.reduce((n, m) => n + ((m.content as RecordContent).records?.length ?? 0), 0)
    await subscriber.waitFor((messages) => count(messages) >= expected.size, 90_000)
    const got = new Map<string, string>()
    for (const { content } of subscriber.messages) {
      for (const record of (content as RecordContent).records) got.set(`${(content as RecordContent).type}|${record.start}`, JSON.stringify(record.values))
    }
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(expected))
    expect(stack.google.stats.rollUpRequests).toBeGreaterThanOrEqual(3)
    expect(stack.google.stats.aggregateRequests).toBe(0)
  })
})
