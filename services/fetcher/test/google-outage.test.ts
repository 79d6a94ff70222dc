import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { inject } from 'vitest'
import { createRedis, deleteKeysWithPrefix } from '@fitstream/shared'
import { GoogleOutageDetector } from '../src/google-outage.js'

const prefix = `test-google-outage-${randomBytes(4).toString('hex')}`
const redis = createRedis(inject('redisUrl'), 'producer', 'google-outage-test')
const options = { threshold: 5, windowMs: 10_000, pauseMs: 2_000 }

afterAll(async () => {
  await deleteKeysWithPrefix(redis, prefix)
  redis.disconnect()
})

describe('GoogleOutageDetector', () => {
  it('lets failures below the threshold use attempts, then pauses every replica once Google looks down', async () => {
    const [a, b] = [new GoogleOutageDetector(redis, `${prefix}-1`, options), new GoogleOutageDetector(redis, `${prefix}-1`, options)]
    const pauses = []
    for (let i = 0; i < 4; i++) pauses.push(await (i % 2 === 0 ? a : b).failed())
    expect(pauses).toEqual([0, 0, 0, 0])
    // The fifth failure, from either replica, trips it; later ones see the pause that is left.
    expect(await b.failed()).toBe(2_000)
    const left = await a.failed()
    expect(left).toBeGreaterThan(0)
    expect(left).toBeLessThanOrEqual(2_000)
  })

  it('does not pause while successes outnumber failures (a few bad requests are not an outage)', async () => {
    const detector = new GoogleOutageDetector(redis, `${prefix}-2`, options)
    await detector.failed()
    for (let i = 0; i < 20; i++) await detector.succeeded()
    const pauses = []
    for (let i = 0; i < 8; i++) pauses.push(await detector.failed())
    expect(pauses.every((pause) => pause === 0)).toBe(true)
  })

  it('after a pause, the first failure pauses again (Google still down)', async () => {
    const detector = new GoogleOutageDetector(redis, `${prefix}-3`, { ...options, pauseMs: 200 })
    for (let i = 0; i < 5; i++) await detector.failed()
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(await detector.failed()).toBe(200)
  })
})
