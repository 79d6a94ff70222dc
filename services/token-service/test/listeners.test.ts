import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FakeGoogle } from '@fitstream/fake-google'
import { waitForRedis } from '@fitstream/shared'
import { loadConfig } from '../src/config.js'
import { createTokenService, type TokenService } from '../src/service.js'
import { silentLogger, testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { ADMIN, INTERNAL, testEnv } from './support.js'

/**
 * Bull Board framed by another site, and /metrics, the API docs and the
 * internal endpoints reachable on the public listener.
 */
const prefix = uniquePrefix('listeners')
const { cleanup } = testRedis(prefix)
let google: FakeGoogle
let service: TokenService

beforeAll(async () => {
  google = await FakeGoogle.start()
  service = await createTokenService(loadConfig(testEnv(google, prefix, { INTERNAL_HTTP_PORT: '0' })), silentLogger())
  await waitForRedis(service.redis)
})

afterAll(async () => {
  await service.close()
  await google.close()
  await cleanup()
})

describe('Bull Board', () => {
  it('forbids framing and foreign scripts on every answer: the board, its API and the password challenge', async () => {
    const basic = { authorization: `Basic ${Buffer.from(`operator:${ADMIN}`).toString('base64')}` }
    const answers = await Promise.all([
      service.server.inject({ url: '/admin/queues', headers: basic }),
      service.server.inject({ url: '/admin/queues/api/queues', headers: basic }),
      service.server.inject({ url: '/admin/queues' }),
    ])
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 401])
    for (const answer of answers) {
      const csp = answer.headers['content-security-policy'] as string
      expect(csp).toContain("frame-ancestors 'none'")
      expect(csp).toContain("script-src 'self'")
      expect(csp).toContain("default-src 'none'")
      expect(answer.headers['x-frame-options']).toBe('DENY')
    }
  })
})

describe('with INTERNAL_HTTP_PORT', () => {
  const internal = () => service.internalServer!

  it('the public listener no longer answers /metrics, the API docs or the internal endpoints', async () => {
    for (const url of ['/metrics', '/docs', '/docs/json', '/docs/static/index.html']) {
      expect((await service.server.inject({ url })).statusCode, url).toBe(404)
    }
    const refresh = await service.server.inject({
      method: 'POST',
      url: '/internal/users/abcdefgh12345678/access-token/refresh',
      headers: { authorization: `Bearer ${INTERNAL}` },
    })
    expect(refresh.statusCode).toBe(404)
    // A header guessed from the source does not open /metrics either.
    expect((await service.server.inject({ url: '/metrics', headers: { 'x-fitstream-internal-scrape': 'guess' } })).statusCode).toBe(404)
    // What people need stays public.
    expect((await service.server.inject({ url: '/' })).statusCode).toBe(200)
    expect((await service.server.inject({ url: '/readyz' })).statusCode).toBe(200)
  })

  it('the internal listener answers them: metrics with queue depths, the docs of the public routes, the token refresh', async () => {
    const metrics = await internal().inject({ url: '/metrics' })
    expect(metrics.statusCode).toBe(200)
    expect(metrics.body).toContain('fitstream_users{state="active"')
    expect(metrics.body).toMatch(/fitstream_queue_jobs\{[^}]*queue="[^"]*sync"/)
    const docs = (await internal().inject({ url: '/docs/json' })).json() as { paths: Record<string, unknown> }
    expect(Object.keys(docs.paths)).toEqual(expect.arrayContaining(['/users', '/connect', '/oauth/callback']))
    const refresh = (authorization?: string) =>
      internal().inject({
        method: 'POST',
        url: '/internal/users/abcdefgh12345678/access-token/refresh',
        headers: authorization === undefined ? {} : { authorization },
      })
    expect((await refresh()).statusCode).toBe(401)
    expect((await refresh(`Bearer ${INTERNAL}`)).statusCode).toBe(404)
    expect((await internal().inject({ url: '/readyz' })).statusCode).toBe(200)
  })

  it('listens on a port of its own', async () => {
    await internal().listen({ host: '127.0.0.1', port: 0 })
    const address = internal().server.address()
    expect(typeof address === 'object' && address !== null && address.port > 0).toBe(true)
  })
})
