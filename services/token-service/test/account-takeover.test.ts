import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FakeGoogle } from '@fitstream/fake-google'
import { USER_FIELDS, userKey, waitForRedis, type ServiceRuntime } from '@fitstream/shared'
import { loadConfig } from '../src/config.js'
import { idTokenSubject } from '../src/google-oauth.js'
import { createTokenService } from '../src/service.js'
import { silentLogger, testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { ADMIN, WebClient, consentAtGoogle, testEnv } from './support.js'

/**
 * Account takeover attempts, performed: someone else's Google account on a person's
 * link, the reverse (a person's grant on someone else's link), a link used twice, and one Google
 * account registering a second user. Each must fail to do harm.
 */
const prefix = uniquePrefix('takeover')
const { redis, cleanup } = testRedis(prefix)
const admin = { authorization: `Bearer ${ADMIN}` }
let google: FakeGoogle
let service: ServiceRuntime
let accounts = 0
/** Google's revocation endpoint seen from the outside: every revocation the service asks for passes here. */
let revocations: Server
let revoked = 0

beforeAll(async () => {
  google = await FakeGoogle.start()
  revocations = createServer((req, res) => {
    revoked++
    const body: Buffer[] = []
    req.on('data', (chunk: Buffer) => body.push(chunk))
    req.on('end', () => {
      void fetch(`${google.revokeUrl}${new URL(req.url ?? '/', 'http://x').search}`, {
        method: req.method ?? 'POST',
        headers: { 'content-type': req.headers['content-type'] ?? 'application/x-www-form-urlencoded' },
        ...(req.method === 'GET' ? {} : { body: Buffer.concat(body) }),
      }).then(async (answer) => {
        res.writeHead(answer.status, { 'content-type': 'application/json' })
        res.end(await answer.text())
      })
    })
  })
  await new Promise<void>((resolve) => revocations.listen(0, '127.0.0.1', resolve))
  const revokeUrl = `http://127.0.0.1:${(revocations.address() as AddressInfo).port}/revoke`
  service = await createTokenService(loadConfig(testEnv(google, prefix, { GOOGLE_REVOKE_URL: revokeUrl })), silentLogger())
  await waitForRedis(service.redis)
})

afterAll(async () => {
  await service.close()
  await google.close()
  await new Promise((resolve) => revocations.close(resolve))
  await cleanup()
})

const back = (browser: WebClient, url: URL) => browser.get(service, `${url.pathname}${url.search}`)

/** A person who connects `account` on the onboarding page; their browser ends up signed in. */
async function connect(account: string, browser = new WebClient()): Promise<{ browser: WebClient; id: string; response: Awaited<ReturnType<typeof back>> }> {
  const page = await browser.get(service, '/')
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!
  const started = await browser.post(service, '/connect', new URLSearchParams({ groups: 'activity', csrf }).toString())
  expect(started.statusCode).toBe(303)
  const response = await back(browser, await consentAtGoogle(new URL(started.headers.location as string), account))
  const id = (await redis.hget(`${prefix}:session:${browser.sessionId()}`, 'userId')) ?? ''
  expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/)
  return { browser, id, response }
}

/** A user whose grant Google refused: the API hands out their reconnect link. */
async function needsReconnect(id: string): Promise<string> {
  await redis.hset(userKey(prefix, id), USER_FIELDS.state, 'reauth_required')
  const user = (await service.server.inject({ method: 'GET', url: `/users/${id}`, headers: admin })).json() as { links: { reconnect: string } }
  return user.links.reconnect
}

/** Opens a link in `browser` and presses its button; the answer leads to Google (or says why not). */
async function useLink(link: string, browser = new WebClient()) {
  const url = new URL(link)
  const page = await browser.get(service, `${url.pathname}${url.search}`)
  expect(page.statusCode).toBe(200)
  const fields = [...page.body.matchAll(/name="([a-z]+)" value="([^"]*)"/g)].map(([, name, value]): [string, string] => [name!, value!])
  return { browser, pressed: await browser.post(service, '/reconnect', new URLSearchParams(fields).toString()) }
}

const googleAccount = (seed: string) => google.listUsers().find((u) => u.seed === seed)!
const refusals = async (code: string) =>
  Number(new RegExp(`fitstream_token_refusals_total\\{code="${code}"[^}]*\\} (\\d+)`).exec((await service.server.inject({ url: '/metrics' })).body)?.[1] ?? 0)

describe('a reconnect link opened by someone signed in at Google as another account', () => {
  it("is refused with a page and a code: the person's token, consent and session are untouched, the attacker gets no session, the attacker's grant is handed back", async () => {
    const alice = `alice-${++accounts}`
    const mallory = `mallory-${++accounts}`
    const victim = await connect(alice)
    const link = await needsReconnect(victim.id)
    const before = await redis.hgetall(userKey(prefix, victim.id))

    const { browser: attacker, pressed } = await useLink(link)
    const revokedBefore = revoked
    const answer = await back(attacker, await consentAtGoogle(new URL(pressed.headers.location as string), mallory))
    expect(revoked - revokedBefore).toBe(1)

    expect(answer.statusCode).toBe(403)
    expect(answer.body).toContain('That is not the Google account of this FitStream account')
    expect(answer.body).toContain('FST_ERR_WRONG_ACCOUNT')
    expect(await redis.hgetall(userKey(prefix, victim.id))).toEqual(before)
    // No account page, privacy report or delete for the attacker.
    expect((await attacker.get(service, '/account')).statusCode).toBe(401)
    const asAttacker = { cookie: attacker.cookie }
    expect((await service.server.inject({ method: 'GET', url: `/users/${victim.id}`, headers: asAttacker })).statusCode).toBe(401)
    expect((await service.server.inject({ method: 'DELETE', url: `/users/${victim.id}`, headers: asAttacker })).statusCode).toBe(401)
    // The person's own session still works; the attacker's grant no longer does at Google.
    expect((await victim.browser.get(service, '/account')).statusCode).toBe(200)
    expect(googleAccount(mallory).refreshToken).toBe('')
    expect(googleAccount(alice).refreshToken).not.toBe('')
    expect(await refusals('FST_ERR_WRONG_ACCOUNT')).toBeGreaterThanOrEqual(1)
  })

  it('works for the person themself, once: the same link used again is refused', async () => {
    const bob = `bob-${++accounts}`
    const person = await connect(bob)
    const link = await needsReconnect(person.id)
    const first = await useLink(link)
    const answer = await back(first.browser, await consentAtGoogle(new URL(first.pressed.headers.location as string), bob))
    expect(answer.headers.location).toBe('/account?notice=reconnected')
    expect(await redis.hget(userKey(prefix, person.id), USER_FIELDS.state)).toBe('active')

    // A second visitor, and the same browser again: the link is spent, whether opened or its form replayed.
    const url = new URL(link)
    for (const browser of [new WebClient(), first.browser]) {
      const opened = await browser.get(service, `${url.pathname}${url.search}`)
      expect(opened.statusCode).toBe(410)
      expect(opened.body).toContain('This link was already used')
      expect(opened.body).toContain('FST_ERR_LINK_USED')
    }
    const replaying = new WebClient()
    const csrf = /name="csrf" value="([^"]+)"/.exec((await replaying.get(service, '/')).body)![1]!
    const replayed = await replaying.post(service, '/reconnect', new URLSearchParams([...url.searchParams, ['csrf', csrf]]).toString())
    expect(replayed.statusCode).toBe(410)
    expect(await refusals('FST_ERR_LINK_USED')).toBeGreaterThanOrEqual(3)
  })

  it('refuses an altered or expired link with a page and a code', async () => {
    const person = await connect(`carol-${++accounts}`)
    const link = new URL(await needsReconnect(person.id))
    link.searchParams.set('e', String(Date.now() + 30 * 86_400_000))
    const altered = await new WebClient().get(service, `${link.pathname}${link.search}`)
    expect(altered.statusCode).toBe(400)
    expect(altered.body).toContain('FST_ERR_LINK_INVALID')
    link.searchParams.set('e', '1000')
    expect((await new WebClient().get(service, `${link.pathname}${link.search}`)).statusCode).toBe(400)
  })
})

describe("a person opening someone else's link (the reverse attack)", () => {
  it("cannot put their grant in the other user's account: refused, their grant handed back, the link's user unchanged", async () => {
    const mallory = `mallory-${++accounts}`
    const dave = `dave-${++accounts}`
    const attacker = await connect(mallory)
    const link = await needsReconnect(attacker.id)
    const before = await redis.hgetall(userKey(prefix, attacker.id))

    // Dave, sent the attacker's link, signs in at Google as himself.
    const { browser, pressed } = await useLink(link)
    const answer = await back(browser, await consentAtGoogle(new URL(pressed.headers.location as string), dave))

    expect(answer.statusCode).toBe(403)
    expect(answer.body).toContain('FST_ERR_WRONG_ACCOUNT')
    expect(await redis.hgetall(userKey(prefix, attacker.id))).toEqual(before)
    expect(googleAccount(dave).refreshToken).toBe('')
    expect((await browser.get(service, '/account')).statusCode).toBe(401)
  })

  it('leaves a person who is a user here their own access: their grant is dropped, not revoked (Google would revoke them all)', async () => {
    const attacker = await connect(`mallory-${++accounts}`)
    const link = await needsReconnect(attacker.id)
    const ida = `ida-${++accounts}`
    const victim = await connect(ida)
    const victimBefore = await redis.hgetall(userKey(prefix, victim.id))

    const { browser, pressed } = await useLink(link)
    const revokedBefore = revoked
    const answer = await back(browser, await consentAtGoogle(new URL(pressed.headers.location as string), ida))

    expect(answer.statusCode).toBe(403)
    expect(answer.body).toContain('FST_ERR_WRONG_ACCOUNT')
    expect(revoked - revokedBefore).toBe(0)
    expect(await redis.hgetall(userKey(prefix, victim.id))).toEqual(victimBefore)
    expect((await victim.browser.get(service, '/account')).statusCode).toBe(200)
  })
})

describe('one FitStream user per Google account', () => {
  it('signs a second registration of the same Google account in to the existing user instead of making another', async () => {
    const erin = `erin-${++accounts}`
    const first = await connect(erin)
    expect(first.response.headers.location).toBe('/account?notice=connected')
    const users = await redis.scard(`${prefix}:users`)

    const second = await connect(erin)
    expect(second.response.headers.location).toBe('/account?notice=reconnected')
    expect(second.id).toBe(first.id)
    expect(await redis.scard(`${prefix}:users`)).toBe(users)
    // A different account is a different user.
    expect((await connect(`frank-${++accounts}`)).id).not.toBe(first.id)
  })

  it('keeps only a keyed hash of the Google account id in Redis, never the id itself', async () => {
    const gina = `gina-${++accounts}`
    const { id } = await connect(gina)
    const sub = googleAccount(gina).googleId
    const keys = await redis.keys(`${prefix}:*`)
    for (const key of keys) {
      expect(key).not.toContain(sub)
      const type = await redis.type(key)
      const dump = type === 'hash' ? JSON.stringify(await redis.hgetall(key)) : type === 'string' ? ((await redis.get(key)) ?? '') : ''
      expect(dump).not.toContain(sub)
    }
    expect(await redis.hget(userKey(prefix, id), 'acct')).toMatch(/^[A-Za-z0-9_-]{43}$/)
  })

  it('frees the Google account when its user is erased, so the person can register again', async () => {
    const hana = `hana-${++accounts}`
    const { id } = await connect(hana)
    expect((await service.server.inject({ method: 'DELETE', url: `/users/${id}`, headers: admin })).statusCode).toBe(200)
    expect(await redis.keys(`${prefix}:account:*`).then((keys) => Promise.all(keys.map((k) => redis.get(k))))).not.toContain(id)
    const again = await connect(hana)
    expect(again.response.headers.location).toBe('/account?notice=connected')
    expect(again.id).not.toBe(id)
  })
})

describe('a grant whose Google account is not named', () => {
  it('is refused with a page and a code, stores nothing and is handed back', async () => {
    const browser = new WebClient()
    const page = await browser.get(service, '/')
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!
    const started = await browser.post(service, '/connect', new URLSearchParams({ groups: 'activity', csrf }).toString())
    // The consent request loses its openid scope on the way, so Google's answer names no account.
    const authorize = new URL(started.headers.location as string)
    authorize.searchParams.set('scope', authorize.searchParams.get('scope')!.replace('openid ', ''))
    const users = await redis.scard(`${prefix}:users`)
    const revokedBefore = revoked
    const answer = await back(browser, await consentAtGoogle(authorize, `nameless-${++accounts}`))
    expect(answer.statusCode).toBe(400)
    expect(answer.body).toContain('FST_ERR_GOOGLE_ID_TOKEN')
    expect(await redis.scard(`${prefix}:users`)).toBe(users)
    expect(revoked - revokedBefore).toBe(1)
    expect(await refusals('FST_ERR_GOOGLE_ID_TOKEN')).toBeGreaterThanOrEqual(1)
  })
})

describe("Google's id_token", () => {
  it('names the account only when it is from Google, for this client and unexpired', () => {
    const now = 1_800_000_000_000
    const jwt = (claims: object) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`
    const good = { iss: 'https://accounts.google.com', aud: google.clientId, exp: now / 1000 + 60, sub: '1234' }
    expect(idTokenSubject(jwt(good), google.clientId, now)).toBe('1234')
    for (const bad of [
      undefined,
      'not-a-jwt',
      jwt({ ...good, iss: 'https://evil.test' }),
      jwt({ ...good, aud: 'other' }),
      jwt({ ...good, exp: now / 1000 - 1 }),
      jwt({ ...good, sub: undefined }),
    ]) {
      expect(() => idTokenSubject(bad, google.clientId, now)).toThrow(expect.objectContaining({ code: 'FST_ERR_GOOGLE_ID_TOKEN' }))
    }
  })
})
