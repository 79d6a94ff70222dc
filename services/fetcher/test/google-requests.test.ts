import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { inject } from 'vitest'
import { createMetrics, createRedis, deleteKeysWithPrefix } from '@fitstream/shared'
import { GoogleFitClient, GoogleRateLimitError } from '../src/google-fit.js'
import { GoogleHealthClient } from '../src/google-health.js'
import { GoogleRequestGate, type SendToGoogle } from '../src/google-requests.js'
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
    // Never more than 4 in one second of Redis' clock: any 9 in a row span at least two turns of a
    // second, so about a second passes between the first and the last being let through (each is
    // timed when it runs, a little later; half a second allows for a busy machine's stalls).
    sentAt.sort((a, b) => a - b)
    for (let i = 0; i + 8 < sentAt.length; i++) expect(sentAt[i + 8]! - sentAt[i]!).toBeGreaterThan(500)
    const exposed = await metrics.registry.metrics()
    expect(exposed).toMatch(/fitstream_google_requests_total\{status="200"[^}]*\} 14\b/)
    expect(exposed).toMatch(/fitstream_google_requests_throttled_total(\{[^}]*\})? ([1-9]\d*)\b/)
  })

  it('takes the requests that go out together in one call, and holds those beyond the second’s room to the next second', async () => {
    const metrics = createMetrics('fetcher')
    const gate = new GoogleRequestGate(redis, `${prefix}-together`, 4, createFetcherMetrics(metrics))
    const sentAt: number[] = []
    const send = await gate.reserve(6)
    const sent = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        send(async () => {
          sentAt.push(Date.now())
          return i
        }),
      ),
    )
    expect(sent).toEqual([0, 1, 2, 3, 4, 5])
    // Four went at once; the other two waited for the next second of Redis' clock.
    sentAt.sort((a, b) => a - b)
    expect(sentAt[3]! - sentAt[0]!).toBeLessThan(500)
    expect(sentAt[4]! - sentAt[0]!).toBeGreaterThan(0)
    const exposed = await metrics.registry.metrics()
    expect(exposed).toMatch(/fitstream_google_requests_total\{status="200"[^}]*\} 6\b/)
    expect(exposed).toMatch(/fitstream_google_requests_throttled_total(\{[^}]*\})? ([1-9]\d*)\b/)
  })

  it('gives up on a request that waited too long as rate-limited, so its fetch goes back to the queue without an attempt', async () => {
    const gate = new GoogleRequestGate(redis, `${prefix}-waits`, 1, createFetcherMetrics(createMetrics('fetcher')), 1_500)
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => gate.send(async () => 'sent')))
    expect(outcomes.filter((o) => o.status === 'fulfilled').length).toBeGreaterThanOrEqual(2)
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as Error)
    expect(refused.length).toBeGreaterThanOrEqual(2)
    for (const error of refused) {
      expect(error).toBeInstanceOf(GoogleRateLimitError)
      expect(error.message).toBe('GOOGLE_RATE_LIMIT_PER_SECOND (1) stayed used up for 1.5 s')
    }
  })

  it('leaves the gate’s own failures (Redis gone) as they are, so they never pass for Google being down', async () => {
    const gone = new Error('Connection is closed.')
    const send: SendToGoogle = () => Promise.reject(gone)
    const request = { accessToken: 'token', dataTypes: ['steps'] as const, window: { startMs: 0, endMs: 3_600_000 }, bucketMs: 3_600_000 }
    await expect(new GoogleFitClient({ rootUrl: 'http://127.0.0.1:9/', timeoutMs: 1_000, send }).aggregate(request)).rejects.toBe(gone)
    await expect(new GoogleHealthClient({ rootUrl: 'http://127.0.0.1:9/', timeoutMs: 1_000, send }).read(request)).rejects.toBe(gone)
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
