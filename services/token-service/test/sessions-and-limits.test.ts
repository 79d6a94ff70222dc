import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { FakeGoogle } from '@fitstream/fake-google'
import { REDACTED_PATHS, USER_FIELDS, userKey, waitForRedis, type ServiceRuntime } from '@fitstream/shared'
import { loadConfig } from '../src/config.js'
import { createTokenService } from '../src/service.js'
import { silentLogger, testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { ADMIN, WebClient, consentAtGoogle, testEnv } from './support.js'

/**
 * Attacks on sessions and limits, performed: filling Redis with anonymous page views,
 * hammering the callback and the admin token, planting a session id before sign-in, and reading
 * links and codes out of the logs.
 */
const prefix = uniquePrefix('sessions')
const { redis, cleanup } = testRedis(prefix)
const LIMITS = {
  RATE_LIMIT_PAGES_PER_MINUTE: '100',
  RATE_LIMIT_CALLBACK_PER_MINUTE: '3',
  RATE_LIMIT_AUTH_FAILURES: '5',
  RATE_LIMIT_RECONSENTS_PER_HOUR: '3',
}
let google: FakeGoogle
let service: ServiceRuntime
/** Every line the service logged. */
const logLines: string[] = []
let accounts = 0
let addresses = 0
/** A browser from an address of its own, so one test's requests don't count against another's limits. */
const newBrowser = () => new WebClient(`198.51.100.${++addresses}`)

beforeAll(async () => {
  google = await FakeGoogle.start()
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString('utf8'))
      done()
    },
  })
  const logger = pino({ level: 'info', redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, sink)
  service = await createTokenService(loadConfig(testEnv(google, prefix, { ...LIMITS, LOG_LEVEL: 'info' })), logger)
  await waitForRedis(service.redis)
})

afterAll(async () => {
  await service.close()
  await google.close()
  await cleanup()
})

async function startConnecting(browser: WebClient, svc = service): Promise<URL> {
  const page = await browser.get(svc, '/')
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!
  const started = await browser.post(svc, '/connect', new URLSearchParams({ groups: 'activity', csrf }).toString())
  expect(started.statusCode).toBe(303)
  return new URL(started.headers.location as string)
}

const sessionKeys = async () => (await redis.keys(`${prefix}:session:*`)).length
const metric = async (code: string) =>
  Number(new RegExp(`fitstream_token_refusals_total\\{code="${code}"[^}]*\\} (\\d+)`).exec((await service.server.inject({ url: '/metrics' })).body)?.[1] ?? 0)

describe('anonymous page views', () => {
  it('10,000 of them from one address store no session and are refused with 429 past the limit', async () => {
    const before = await sessionKeys()
    const statuses = new Map<number, number>()
    let refusal: { code?: string; retryAfter?: string } = {}
    for (let batch = 0; batch < 100; batch++) {
      const answers = await Promise.all(Array.from({ length: 100 }, () => service.server.inject({ method: 'GET', url: '/', remoteAddress: '203.0.113.7' })))
      for (const answer of answers) {
        statuses.set(answer.statusCode, (statuses.get(answer.statusCode) ?? 0) + 1)
        if (answer.statusCode === 429) refusal = { code: answer.json().code, retryAfter: answer.headers['retry-after'] as string }
      }
    }
    expect(Object.fromEntries(statuses)).toEqual({ 200: 100, 429: 9_900 })
    expect(refusal.code).toBe('FST_ERR_RATE_LIMITED')
    expect(Number(refusal.retryAfter)).toBeGreaterThan(0)
    expect(await sessionKeys()).toBe(before)
    // What they left in Redis: one counter for the address, which expires with its minute.
    const counters = await redis.keys(`${prefix}:rate-limit:*203.0.113.7`)
    expect(counters).toHaveLength(1)
    expect(await redis.pttl(counters[0]!)).toBeLessThanOrEqual(60_000)
    expect(await metric('FST_ERR_RATE_LIMITED')).toBeGreaterThanOrEqual(9_900)
    // Another address is served meanwhile.
    expect((await service.server.inject({ method: 'GET', url: '/', remoteAddress: '203.0.113.8' })).statusCode).toBe(200)
  })

  it("rate-limits Google's callback per address", async () => {
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) statuses.push((await service.server.inject({ url: '/oauth/callback?state=x&code=y', remoteAddress: '203.0.113.9' })).statusCode)
    expect(statuses).toEqual([400, 400, 400, 429, 429])
  })

  it('get a session only once they start connecting, short-lived until they sign in', async () => {
    const browser = newBrowser()
    const before = await sessionKeys()
    await browser.get(service, '/')
    expect(browser.sessionId()).toBeUndefined()
    expect(await sessionKeys()).toBe(before)
    const started = await browser
      .get(service, '/')
      .then(async (page) =>
        browser.post(service, '/connect', new URLSearchParams({ groups: 'activity', csrf: /name="csrf" value="([^"]+)"/.exec(page.body)![1]! }).toString()),
      )
    expect(started.cookies.find((c) => c.name === 'fitstream_session')?.maxAge).toBe(15 * 60)
    const id = browser.sessionId()!
    expect(await redis.ttl(`${prefix}:session:${id}`)).toBeLessThanOrEqual(15 * 60)
    // Signed in, the new session lasts 30 days.
    const back = await consentAtGoogle(new URL(started.headers.location as string), `shortlived-${++accounts}`)
    const signedIn = await browser.get(service, `${back.pathname}${back.search}`)
    expect(signedIn.cookies.find((c) => c.name === 'fitstream_session')?.maxAge).toBe(30 * 86_400)
    expect(await redis.ttl(`${prefix}:session:${browser.sessionId()}`)).toBeGreaterThan(29 * 86_400)
  })
})

describe('behind a reverse proxy (TRUST_PROXY_HOPS=1)', () => {
  const proxiedPrefix = uniquePrefix('sessions-proxied')
  const proxiedRedis = testRedis(proxiedPrefix)
  let proxied: ServiceRuntime

  beforeAll(async () => {
    proxied = await createTokenService(loadConfig(testEnv(google, proxiedPrefix, { TRUST_PROXY_HOPS: '1', RATE_LIMIT_PAGES_PER_MINUTE: '3' })), silentLogger())
  })

  afterAll(async () => {
    await proxied.close()
    await proxiedRedis.cleanup()
  })

  it('limits each client by the address the proxy saw, however the client fills in X-Forwarded-For itself', async () => {
    // Every request reaches the service from the proxy's address; the proxy appends the client's.
    const view = (forwardedFor: string) => proxied.server.inject({ url: '/', remoteAddress: '10.0.0.2', headers: { 'x-forwarded-for': forwardedFor } })
    const spoofing: number[] = []
    for (let i = 0; i < 5; i++) spoofing.push((await view(`192.0.2.${i}, 203.0.113.50`)).statusCode)
    expect(spoofing).toEqual([200, 200, 200, 429, 429])
    // Another visitor behind the same proxy is not held back by the first.
    expect((await view('203.0.113.51')).statusCode).toBe(200)
  })
})

describe('a session id planted before sign-in (fixation)', () => {
  it('is worth nothing after the person signs in: they get a new id, the planted one is ended', async () => {
    // The attacker starts connecting to get a valid session id, and plants it in the victim's browser.
    const attacker = newBrowser()
    await startConnecting(attacker)
    const planted = attacker.sessionId()!
    const victim = newBrowser()
    victim.set('fitstream_session', attacker.raw('fitstream_session')!)
    expect(victim.sessionId()).toBe(planted)

    const back = await consentAtGoogle(await startConnecting(victim), `victim-${++accounts}`)
    const signedIn = await victim.get(service, `${back.pathname}${back.search}`)
    expect(signedIn.headers.location).toBe('/account?notice=connected')
    expect(victim.sessionId()).not.toBe(planted)
    expect((await victim.get(service, '/account')).statusCode).toBe(200)
    // The attacker, holding the planted id, sees nothing.
    expect(await redis.exists(`${prefix}:session:${planted}`)).toBe(0)
    expect((await attacker.get(service, '/account')).statusCode).toBe(401)
    const userId = await redis.hget(`${prefix}:session:${victim.sessionId()}`, 'userId')
    expect(await redis.hget(userKey(prefix, userId!), USER_FIELDS.state)).toBe('active')
  })
})

describe('served over https', () => {
  const httpsPrefix = uniquePrefix('sessions-https')
  const httpsRedis = testRedis(httpsPrefix)
  let secure: ServiceRuntime

  beforeAll(async () => {
    secure = await createTokenService(loadConfig(testEnv(google, httpsPrefix, { PUBLIC_URL: 'https://fitstream.test' })), silentLogger())
  })

  afterAll(async () => {
    await secure.close()
    await httpsRedis.cleanup()
  })

  it('names its cookies __Host- and marks them Secure, host-only, for the whole site', async () => {
    const page = await secure.server.inject({ method: 'GET', url: '/' })
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!
    const form = page.cookies.find((c) => c.name === '__Host-fitstream_form')!
    expect(form).toMatchObject({ secure: true, path: '/', httpOnly: true })
    expect(form.domain).toBeUndefined()
    const started = await secure.server.inject({
      method: 'POST',
      url: '/connect',
      headers: { cookie: `__Host-fitstream_form=${form.value}`, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ groups: 'activity', csrf }).toString(),
    })
    expect(started.statusCode).toBe(303)
    const session = started.cookies.find((c) => c.name === '__Host-fitstream_session')!
    expect(session).toMatchObject({ secure: true, path: '/', httpOnly: true, sameSite: 'Lax' })
    expect(session.domain).toBeUndefined()
    // A cookie without the prefix (which a subdomain or plain http could set) is not read.
    const plain = await secure.server.inject({ method: 'GET', url: '/account', headers: { cookie: `fitstream_session=${session.value}` } })
    expect(plain.statusCode).toBe(401)
  })
})

describe('one account sent to Google over and over', () => {
  it('is refused past its hourly limit with a page and a code, while other accounts are not', async () => {
    const signIn = async () => {
      const browser = newBrowser()
      const back = await consentAtGoogle(await startConnecting(browser), `busy-${++accounts}`)
      await browser.get(service, `${back.pathname}${back.search}`)
      return browser
    }
    const busy = await signIn()
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) statuses.push((await busy.get(service, '/account/reconnect')).statusCode)
    expect(statuses).toEqual([303, 303, 303, 429, 429])
    const refused = await busy.get(service, '/account/reconnect')
    expect(refused.body).toContain('FST_ERR_RATE_LIMITED')
    expect(refused.headers['retry-after']).toBe('3600')
    expect((await (await signIn()).get(service, '/account/reconnect')).statusCode).toBe(303)
  })
})

describe('failed admin authentication', () => {
  it('is counted per address: past the limit every attempt is refused with 429, the right token too; other addresses are not', async () => {
    const attempt = (token: string, remoteAddress: string) =>
      service.server.inject({ method: 'GET', url: '/users', headers: { authorization: `Bearer ${token}` }, remoteAddress })
    const guesses: number[] = []
    for (let i = 0; i < 5; i++) guesses.push((await attempt(`guess-${i}-0123456789abcdef0123`, '192.0.2.10')).statusCode)
    expect(guesses).toEqual([401, 401, 401, 401, 401])
    const locked = await attempt(ADMIN, '192.0.2.10')
    expect(locked.statusCode).toBe(429)
    expect(locked.json()).toMatchObject({ code: 'FST_ERR_RATE_LIMITED' })
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(14 * 60)
    // Bull Board's Basic prompt counts as well.
    const board = await service.server.inject({
      url: '/admin/queues',
      headers: { authorization: `Basic ${Buffer.from('admin:wrong').toString('base64')}` },
      remoteAddress: '192.0.2.10',
    })
    expect(board.statusCode).toBe(429)
    expect((await attempt(ADMIN, '192.0.2.11')).statusCode).toBe(200)
  })
})

describe('logs', () => {
  it('never hold a link, an authorization code or a state: request lines carry the path only', async () => {
    const browser = newBrowser()
    const back = await consentAtGoogle(await startConnecting(browser), `logged-${++accounts}`)
    await browser.get(service, `${back.pathname}${back.search}`)
    const userId = (await redis.hget(`${prefix}:session:${browser.sessionId()}`, 'userId'))!
    await redis.hset(userKey(prefix, userId), USER_FIELDS.state, 'reauth_required')
    const link = new URL((await service.server.inject({ url: `/users/${userId}`, headers: { authorization: `Bearer ${ADMIN}` } })).json().links.reconnect)
    await newBrowser().get(service, `${link.pathname}${link.search}`)

    const logged = logLines.join('')
    // The requests were logged, by path.
    expect(logged).toContain('"url":"/oauth/callback"')
    expect(logged).toContain('"url":"/reconnect"')
    for (const secret of [back.searchParams.get('code')!, back.searchParams.get('state')!, link.searchParams.get('s')!, link.searchParams.get('n')!]) {
      expect(secret.length).toBeGreaterThan(15)
      // As the URL carried it (Google's codes have a '/') and as it is.
      expect(logged).not.toContain(encodeURIComponent(secret))
      expect(logged).not.toContain(secret)
    }
  })
})
