import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { inject } from 'vitest'
import { createMetrics, createRedis, deleteKeysWithPrefix } from '@fitstream/shared'
import { GoogleRequestGate } from '../src/google-requests.js'
import { createFetcherMetrics } from '../src/metrics.js'

const prefix = `test-google-requests-${randomBytes(4).toString('hex')}`
const redis = createRedis(inject('redisUrl'), 'producer', 'google-requests-test')

afterAll(async () => {
  await deleteKeysWithPrefix(redis, prefix)
  redis.disconnect()
})

describe('GoogleRequestGate', () => {
  it('holds every replica together to the project’s requests per second, counting each request and each wait', async () => {
    const metrics = createMetrics('fetcher')
    const fetcherMetrics = createFetcherMetrics(metrics)
    // Two replicas sharing one limit of 4 requests a second.
    const replicas = [0, 1].map(() => new GoogleRequestGate(redis, prefix, 4, fetcherMetrics))
    const sentAt: number[] = []
    const requests = Array.from({ length: 14 }, (_, i) =>
      replicas[i % 2]!.send(async () => {
        sentAt.push(Date.now())
        return i
      }),
    )
    expect(await Promise.all(requests)).toEqual(Array.from({ length: 14 }, (_, i) => i))
    // Redis' clock is this machine's: no second saw more than 4 of them.
    const perSecond = new Map<number, number>()
    for (const at of sentAt) perSecond.set(Math.floor(at / 1000), (perSecond.get(Math.floor(at / 1000)) ?? 0) + 1)
    expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(4)
    expect(perSecond.size).toBeGreaterThanOrEqual(4)
    const exposed = await metrics.registry.metrics()
    expect(exposed).toMatch(/fitstream_google_requests_total\{status="200"[^}]*\} 14\b/)
    expect(exposed).toMatch(/fitstream_google_requests_throttled_total(\{[^}]*\})? ([1-9]\d*)\b/)
  })

  it('counts a failed request by the status Google answered, or as a network failure, and passes the error on', async () => {
    const metrics = createMetrics('fetcher')
    const gate = new GoogleRequestGate(redis, `${prefix}-errors`, 100, createFetcherMetrics(metrics))
    const unavailable = Object.assign(new Error('backend error'), { response: { status: 503 } })
    await expect(gate.send(() => Promise.reject(unavailable))).rejects.toBe(unavailable)
    await expect(gate.send(() => Promise.reject(new Error('socket hang up')))).rejects.toThrow('socket hang up')
    const exposed = await metrics.registry.metrics()
    expect(exposed).toMatch(/fitstream_google_requests_total\{status="503"[^}]*\} 1\b/)
    expect(exposed).toMatch(/fitstream_google_requests_total\{status="network"[^}]*\} 1\b/)
  })
})
