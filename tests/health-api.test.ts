import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { healthExerciseSessions, syntheticRollup, userProfile, type ActiveMinutesRollupValue, type ActiveZoneMinutesRollupValue } from '@fitstream/fake-google'
import { Stack, recordsOf, type RegisteredUser, type Subscriber } from '@fitstream/devstack'
import type { DataTypeKey } from '@fitstream/shared'
import { HOUR, expectedRecords } from './delivery.js'
import { redisUrl, uniquePrefix } from './helpers.js'

/**
 * A deployment on the Google Health API (`GOOGLE_DATA_API=health`), every service a process: a
 * person who granted Health API scopes is read through its roll-ups, never through Fit, and the
 * buyer receives the same records Fit would have given for the same data; heart points and active
 * minutes reach the buyer as Google defines them.
 */
let stack: Stack
let subscriber: Subscriber
let user: RegisteredUser
let runner: RegisteredUser

beforeAll(async () => {
  stack = await Stack.start({ redisUrl: redisUrl(), prefix: uniquePrefix('health-api'), backfillDays: 1, googleApi: 'health' })
  subscriber = await stack.startSubscriber()
  user = await stack.registerUser({ seed: 'health-api-user-1', dataTypes: ['steps', 'calories', 'heart_rate'] })
  // A runner who ran in the day the backfill reads, so that cardio-zone minutes are there to check.
  const now = Date.now()
  let n = 0
  while (!userProfile(`health-api-runner-${n}`).runner || healthExerciseSessions(`health-api-runner-${n}`, now - 22 * HOUR, now - 2 * HOUR).length === 0) n++
  runner = await stack.registerUser({ seed: `health-api-runner-${n}`, dataTypes: ['heart_minutes', 'active_minutes'] })
})

afterAll(async () => {
  await stack?.stop()
})

const recordsOfTypes = (messages: readonly { content: unknown }[], types: readonly DataTypeKey[]) =>
  messages.flatMap((m) => recordsOf(m.content)).filter((r) => types.includes(r.type as DataTypeKey))
const count = (messages: readonly { content: unknown }[], types: readonly DataTypeKey[]) => recordsOfTypes(messages, types).length

/** `type|start` → values of the records the buyer received of these types. */
function received(types: readonly DataTypeKey[]): Record<string, string> {
  const got = new Map<string, string>()
  for (const record of recordsOfTypes(subscriber.messages, types)) got.set(`${record.type}|${record.start}`, JSON.stringify(record.values))
  return Object.fromEntries(got)
}

async function syncedUntil(who: RegisteredUser): Promise<number> {
  const state = async () => (await stack.api('GET', `/users/${who.userId}`)).body as { fetchedUntil: string | null; dataApi: string }
  await expect.poll(async () => (await state()).fetchedUntil, { timeout: 60_000, interval: 250 }).not.toBeNull()
  expect((await state()).dataApi).toBe('health')
  return Date.parse((await state()).fetchedUntil!)
}

const snap = (value: number, [low, high]: [number, number], step: number): number => Math.round(Math.min(high, Math.max(low, value)) / step) * step

describe('a deployment on the Google Health API', () => {
  it('delivers a person’s records to the buyer, read through Health API roll-ups only', async () => {
    const end = await syncedUntil(user)
    const expected = expectedRecords(user, end - 24 * HOUR, end)
    expect(expected.size).toBeGreaterThan(24)
    await subscriber.waitFor((messages) => count(messages, user.dataTypes) >= expected.size, 90_000)
    expect(received(user.dataTypes)).toEqual(Object.fromEntries(expected))
    expect(stack.google.stats.rollUpRequests).toBeGreaterThanOrEqual(3)
    expect(stack.google.stats.aggregateRequests).toBe(0)
  })

  it('delivers heart points as Google’s weighted zone minutes and active minutes as moderate and vigorous ones', async () => {
    const end = await syncedUntil(runner)
    // What Google answers for each hour, read by its documented meaning: cardio and peak zone sums
    // are 2 a minute already, fat burn 1; light minutes are not active ones. Then the devstack's
    // policy: intensity clamped to [0, 120], duration to [0, 60] in steps of 5, minutes to [0, 60] in steps of 5.
    const expected = new Map<string, string>()
    let cardio = 0
    for (let h = end - 24 * HOUR; h < end; h += HOUR) {
      const start = new Date(h).toISOString()
      const zones = syntheticRollup(runner.google.seed, 'active-zone-minutes', h, h + HOUR) as ActiveZoneMinutesRollupValue | undefined
      if (zones !== undefined) {
        const [fatBurn, high] = [Number(zones.sumInFatBurnHeartZone ?? 0), Number(zones.sumInCardioHeartZone ?? 0) + Number(zones.sumInPeakHeartZone ?? 0)]
        cardio += high
        expected.set(
          `heart_minutes|${start}`,
          JSON.stringify({ intensity: snap(fatBurn + high, [0, 120], 1), duration_min: snap(fatBurn + high / 2, [0, 60], 5) }),
        )
      }
      const levels = syntheticRollup(runner.google.seed, 'active-minutes', h, h + HOUR) as ActiveMinutesRollupValue | undefined
      if (levels !== undefined) {
        const minutes = (levels.activeMinutesRollupByActivityLevel ?? []).reduce(
          (m, l) => m + (l.activityLevel === 'LIGHT' ? 0 : Number(l.activeMinutesSum)),
          0,
        )
        expected.set(`active_minutes|${start}`, JSON.stringify({ minutes: snap(minutes, [0, 60], 5) }))
      }
    }
    expect(cardio).toBeGreaterThan(0)
    await subscriber.waitFor((messages) => count(messages, runner.dataTypes) >= expected.size, 90_000)
    expect(received(runner.dataTypes)).toEqual(Object.fromEntries(expected))
  })
})
