import { afterAll, describe, expect, it } from 'vitest'
import { StageQueues, commonEnv, parseEnv, retryPolicies } from '@fitstream/shared'
import { SyncScheduler, spreadOffset } from '../src/scheduler.js'
import { silentLogger, testRedis, uniquePrefix } from '../../../tests/helpers.js'

const HOUR = 3_600_000
const now = Date.UTC(2026, 10, 24, 9, 20)
const prefix = uniquePrefix('scheduler')
const { redis, cleanup } = testRedis(prefix)
const queues = new StageQueues({ connection: redis, prefix, retry: retryPolicies(parseEnv(commonEnv, {})), logger: silentLogger() })
const KEY = 'scheduler-test-offset-key'
const scheduler = new SyncScheduler(queues, redis, prefix, HOUR, KEY)

afterAll(async () => {
  await queues.close()
  await cleanup()
})

describe('SyncScheduler', () => {
  it('gives each user a fixed slot in the period, always after now', () => {
    for (const userId of ['a', 'b', 'user-with-a-longer-id']) {
      const slot = scheduler.nextSlot(userId, now)
      expect(slot).toBeGreaterThan(now)
      expect(slot - now).toBeLessThanOrEqual(HOUR)
      expect((slot - spreadOffset(userId, HOUR, now, KEY)) % HOUR).toBe(0)
      expect(scheduler.nextSlot(userId, now + 5 * 86_400_000) - slot).toBe(5 * 24 * HOUR)
    }
  })

  it("moves a user's time in the hour each month, unrelated to the last month's and to anything computable without the key", () => {
    const users = Array.from({ length: 400 }, (_, i) => `month-user-${i}`)
    const november = Date.UTC(2026, 10, 30, 12)
    const december = Date.UTC(2026, 11, 1, 12)
    const minute = (userId: string, at: number): number => Math.floor(((scheduler.nextSlot(userId, at) % HOUR) / HOUR) * 60)
    // Someone who knows a person's November minute guesses the same minute in December: right about
    // 1 time in 60, as a random guess is, where a fixed offset made it right every time.
    const same = users.filter((userId) => minute(userId, november) === minute(userId, december)).length
    expect(same).toBeLessThan(20)
    // Nor does the unkeyed hash, which anyone who knows the user id could compute, predict it.
    const unkeyed = new SyncScheduler(queues, redis, prefix, HOUR)
    expect(users.filter((userId) => minute(userId, december) === Math.floor(((unkeyed.nextSlot(userId, december) % HOUR) / HOUR) * 60)).length).toBeLessThan(20)
  })

  it('dispatches exactly the users whose slot has come, once per slot however many replicas dispatch, then moves them on', async () => {
    const users = Array.from({ length: 30 }, (_, i) => `dispatch-user-${i}`)
    for (const userId of users) await scheduler.schedule(userId, now)
    const slots = new Map(await Promise.all(users.map(async (userId) => [userId, (await scheduler.nextRunAt(userId))!] as const)))
    const at = now + HOUR / 2
    const due = users.filter((userId) => slots.get(userId)! <= at)
    expect(due.length).toBeGreaterThan(0)
    expect(due.length).toBeLessThan(users.length)

    // Two replicas at once: one job per user and slot.
    const other = new SyncScheduler(queues, redis, prefix, HOUR, KEY)
    await Promise.all([scheduler.dispatchDue(at), other.dispatchDue(at)])
    const jobs = await queues.queue('sync').getJobs(['waiting'])
    expect(jobs.map((job) => job.data.userId).sort()).toEqual([...due].sort())
    expect(jobs.every((job) => job.data.reason === 'schedule')).toBe(true)
    for (const userId of due) expect(await scheduler.nextRunAt(userId)).toBe(slots.get(userId)! + HOUR)
    for (const userId of users.filter((u) => !due.includes(u))) expect(await scheduler.nextRunAt(userId)).toBe(slots.get(userId))
    expect(await scheduler.dispatchDue(at)).toBe(0)
  })

  it('forgets an unscheduled user', async () => {
    await scheduler.schedule('leaving-user', now)
    expect(await scheduler.unschedule('leaving-user')).toBe(true)
    expect(await scheduler.nextRunAt('leaving-user')).toBeUndefined()
    expect(await scheduler.unschedule('leaving-user')).toBe(false)
  })

  it('takes over the per-user job schedulers earlier versions kept', async () => {
    await queues.queue('sync').upsertJobScheduler('user-adopted-1', { every: HOUR }, { name: 'sync', data: { userId: 'adopted-1', reason: 'schedule' } })
    await queues.queue('sync').upsertJobScheduler('user-adopted-2', { every: HOUR }, { name: 'sync', data: { userId: 'adopted-2', reason: 'schedule' } })
    expect(await scheduler.adoptJobSchedulers(now)).toBe(2)
    expect(await queues.queue('sync').getJobSchedulersCount()).toBe(0)
    expect(await scheduler.nextRunAt('adopted-1')).toBe(scheduler.nextSlot('adopted-1', now))
    expect(await scheduler.adoptJobSchedulers(now)).toBe(0)
  })
})
