import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { google as googleapis } from 'googleapis'
import { FakeGoogle } from '@fitstream/fake-google'
import { Keyring, USER_FIELDS, decodeScopes, userKey, waitForRedis, type Env, type ServiceRuntime } from '@fitstream/shared'
import { loadConfig } from '../src/config.js'
import { COHORT_WINDOWS, INDIVIDUAL_OFFERS, consentGroups } from '../src/consent.js'
import { createTokenService } from '../src/service.js'
import { silentLogger, testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { ADMIN, WebClient as Browser, testEnv, waitFor } from './support.js'

const prefix = uniquePrefix('onboarding')
const { redis, cleanup } = testRedis(prefix)
const admin = { authorization: `Bearer ${ADMIN}` }
const SCOPE = 'https://www.googleapis.com/auth/fitness.'
let google: FakeGoogle
let service: ServiceRuntime
let env: Env
let accounts = 0

beforeAll(async () => {
  google = await FakeGoogle.start()
  env = testEnv(google, prefix)
  service = await createTokenService(loadConfig(env), silentLogger())
  await waitForRedis(service.redis)
})

afterAll(async () => {
  await service.close()
  await google.close()
  await cleanup()
})

async function openOnboarding(svc = service): Promise<Browser> {
  const browser = new Browser()
  const page = await browser.get(svc, '/')
  expect(page.statusCode).toBe(200)
  // A page view makes no session: the form's token is checked against a cookie of its own.
  expect(page.cookies.map((c) => c.name)).toEqual(['fitstream_form'])
  expect(page.cookies[0]).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' })
  browser.csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!
  return browser
}

/** Opens a reconnect link in a browser of its own and presses its button: the answer leads to Google. */
async function followLink(link: string, svc = service, browser = new Browser()) {
  const url = new URL(link)
  const page = await browser.get(svc, `${url.pathname}${url.search}`)
  expect(page.statusCode).toBe(200)
  const fields = new URLSearchParams([...page.body.matchAll(/name="([a-z]+)" value="([^"]*)"/g)].map(([, name, value]): [string, string] => [name!, value!]))
  const pressed = await browser.post(svc, '/reconnect', fields.toString())
  return { browser, pressed }
}

/** A consent form as a browser sends it: a field per ticked box (`individual`: the individual-record opt-ins). */
function form(browser: { csrf: string }, groups: string[], extra: Record<string, string> = {}, individual: string[] = []): string {
  const fields: [string, string][] = [
    ...groups.map((g): [string, string] => ['groups', g]),
    ...individual.map((t): [string, string] => ['individual', t]),
    ['csrf', browser.csrf],
    ...Object.entries(extra),
  ]
  return new URLSearchParams(fields).toString()
}

async function post(browser: Browser, url: string, body: string, svc = service) {
  return browser.post(svc, url, body)
}

async function startConnect(browser: Browser, groups: string[], svc = service, individual: string[] = []): Promise<URL> {
  const response = await post(browser, '/connect', form(browser, groups, { tz: 'Europe/Helsinki' }, individual), svc)
  expect(response.statusCode).toBe(303)
  return new URL(response.headers.location as string)
}

/** What a person does on Google's consent screen; returns where Google sends the browser back to. */
async function consent(authorize: URL, options: { decision?: 'allow' | 'deny'; account?: string; untick?: string[] } = {}): Promise<URL> {
  const html = await (await fetch(authorize)).text()
  const requestId = /name="request_id" value="([^"]+)"/.exec(html)![1]!
  const answer = new URLSearchParams({ request_id: requestId, decision: options.decision ?? 'allow', account: options.account ?? `person-${++accounts}` })
  for (const [, scope] of html.matchAll(/name="scope" value="([^"]+)"/g)) if (!options.untick?.includes(scope!)) answer.append('scope', scope!)
  const response = await fetch(`${authorize.origin}${authorize.pathname}`, { method: 'POST', body: answer, redirect: 'manual' })
  expect(response.status).toBe(302)
  return new URL(response.headers.get('location')!)
}

async function callback(browser: Browser | undefined, url: URL, svc = service) {
  return (browser ?? new Browser()).get(svc, `${url.pathname}${url.search}`)
}

async function connectedUser(groups: string[], account?: string, svc = service, individual: string[] = []): Promise<{ browser: Browser; id: string }> {
  const browser = await openOnboarding(svc)
  const back = await callback(browser, await consent(await startConnect(browser, groups, svc, individual), account === undefined ? {} : { account }), svc)
  expect(back.statusCode).toBe(303)
  const me = await browser.get(svc, '/account')
  expect(me.statusCode).toBe(200)
  browser.csrf = /name="csrf" value="([^"]+)"/.exec(me.body)![1]!
  const sessionId = browser.sessionId()!
  const userId = await svc.redis.hget(`${svc.config.QUEUE_PREFIX}:session:${sessionId}`, 'userId')
  expect(userId).not.toBeNull()
  return { browser, id: userId! }
}

describe('connecting a Google account', () => {
  it('sends the browser to Google with PKCE S256, offline access, a state and only the chosen scopes', async () => {
    const authorize = await startConnect(await openOnboarding(), ['heart_rate', 'activity'])
    expect(`${authorize.origin}${authorize.pathname}`).toBe(google.authorizeUrl)
    const q = authorize.searchParams
    // openid: Google's answer names the account (its sub), which a returning person must match.
    expect(q.get('scope')!.split(' ')).toEqual(['openid', `${SCOPE}activity.read`, `${SCOPE}heart_rate.read`])
    expect(q.get('code_challenge_method')).toBe('S256')
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(q.get('access_type')).toBe('offline')
    expect(q.get('prompt')).toBe('consent')
    expect(q.get('redirect_uri')).toBe('http://fitstream.test/oauth/callback')
    expect(q.get('state')).toMatch(/^[A-Za-z0-9_-]{32}$/)
  })

  it('stores the user with exactly the chosen consent, encrypted tokens, a schedule and a first sync', async () => {
    const { id } = await connectedUser(['activity', 'heart_rate'])
    const stored = await redis.hgetall(userKey(prefix, id))
    expect(stored[USER_FIELDS.dataTypes]!.split(',').sort()).toEqual(['active_minutes', 'activity', 'calories', 'heart_minutes', 'heart_rate', 'steps'])
    expect(decodeScopes(stored[USER_FIELDS.scopes]).sort()).toEqual([`${SCOPE}activity.read`, `${SCOPE}heart_rate.read`, 'openid'])
    const tokens = await redis.hmgetBuffer(userKey(prefix, id), USER_FIELDS.refreshToken, USER_FIELDS.accessToken)
    expect(tokens.map((token) => Keyring.keyIdOf(token!))).toEqual(['r1', 'a1'])
    expect(stored[USER_FIELDS.timeZone]).toBe('Europe/Helsinki')
    expect(await redis.zscore(`${prefix}:schedule:sync`, id)).not.toBeNull()
    const syncs = await service.queues.queue('sync').getJobs(['waiting'])
    expect(syncs.map((j) => j.data)).toContainEqual({ userId: id, reason: 'onboarding' })
  })

  it('keeps only what Google granted when the person unticks a scope there', async () => {
    const browser = await openOnboarding()
    const back = await callback(browser, await consent(await startConnect(browser, ['activity', 'sleep']), { untick: [`${SCOPE}sleep.read`] }))
    expect(back.headers.location).toBe('/account?notice=partial')
    const page = await service.server.inject({ method: 'GET', url: '/account?notice=partial', headers: { cookie: browser.cookie } })
    expect(page.body).toContain('Google did not grant access to some of what you chose')
    expect(page.body).not.toMatch(/sleep:/i)
  })

  it('shows a clear page when the person denies access, and stores nothing', async () => {
    const before = await redis.scard(`${prefix}:users`)
    const browser = await openOnboarding()
    const back = await callback(browser, await consent(await startConnect(browser, ['activity']), { decision: 'deny' }))
    expect(back.statusCode).toBe(403)
    expect(back.body).toContain('You did not allow access')
    expect(back.body).toContain('Nothing was stored')
    expect(await redis.scard(`${prefix}:users`)).toBe(before)
  })

  it('rejects a tampered state, a state from another browser, and a replayed callback', async () => {
    const browser = await openOnboarding()
    const back = await consent(await startConnect(browser, ['activity']))
    const tampered = new URL(back)
    tampered.searchParams.set('state', `${back.searchParams.get('state')!.slice(0, -2)}xx`)
    const forged = await callback(browser, tampered)
    expect(forged.statusCode).toBe(400)
    expect(forged.body).toContain('This sign-in is not valid')
    expect((await callback(await openOnboarding(), back)).statusCode).toBe(400)
    expect((await callback(undefined, back)).statusCode).toBe(400)
  })

  it('binds state to the session: the right browser succeeds once, a replay of the same callback is refused', async () => {
    const browser = await openOnboarding()
    const back = await consent(await startConnect(browser, ['activity']))
    expect((await callback(browser, back)).statusCode).toBe(303)
    const replay = await callback(browser, back)
    expect(replay.statusCode).toBe(400)
    expect(replay.body).toContain('already used')
  })

  it('shows Google refusing a replayed authorization code under a fresh state', async () => {
    const browser = await openOnboarding()
    const first = await consent(await startConnect(browser, ['activity']))
    expect((await callback(browser, first)).statusCode).toBe(303)
    const second = await consent(await startConnect(browser, ['activity']))
    second.searchParams.set('code', first.searchParams.get('code')!)
    const replay = await callback(browser, second)
    expect(replay.statusCode).toBe(400)
    expect(replay.body).toContain('Google did not accept this sign-in')
    expect(replay.body).toContain('invalid_grant')
    expect(replay.body).not.toContain(first.searchParams.get('code')!)
  })

  it('refuses forms without the session’s CSRF token and oversized forms', async () => {
    const browser = await openOnboarding()
    expect((await post(browser, '/connect', form({ ...browser, csrf: 'forged' }, ['activity']))).statusCode).toBe(403)
    expect((await post(browser, '/connect', form(browser, ['activity'], { junk: 'x'.repeat(5000) }))).statusCode).toBe(413)
    expect((await post(browser, '/connect', form(browser, []))).statusCode).toBe(400)
  })
})

describe('the user’s own session', () => {
  it('may read its own user but no other, and nobody without a session or token may', async () => {
    const alice = await connectedUser(['activity'])
    const bob = await connectedUser(['sleep'])
    const own = await service.server.inject({ method: 'GET', url: `/users/${alice.id}`, headers: { cookie: alice.browser.cookie } })
    expect(own.statusCode).toBe(200)
    expect(own.json()).toMatchObject({ id: alice.id, state: 'active', links: { account: 'http://fitstream.test/account', reconnect: null } })
    expect(own.body).not.toMatch(/ya29\.|1\/\/09|v1\./)
    const other = await service.server.inject({ method: 'GET', url: `/users/${bob.id}`, headers: { cookie: alice.browser.cookie } })
    expect(other.statusCode).toBe(403)
    expect((await service.server.inject({ method: 'DELETE', url: `/users/${bob.id}`, headers: { cookie: alice.browser.cookie } })).statusCode).toBe(403)
    expect((await service.server.inject({ method: 'GET', url: `/users/${bob.id}` })).statusCode).toBe(401)
    const forged = alice.browser.cookie.replace(/\.[^.]+$/, '.AAAA')
    expect((await service.server.inject({ method: 'GET', url: `/users/${alice.id}`, headers: { cookie: forged } })).statusCode).toBe(401)
    expect((await service.server.inject({ method: 'GET', url: '/account', headers: { cookie: forged } })).statusCode).toBe(401)
  })
})

describe('consent changes', () => {
  it('narrows consent at once (from the next fetch), without Google', async () => {
    const { browser, id } = await connectedUser(['activity', 'heart_rate'])
    const response = await service.server.inject({
      method: 'PUT',
      url: `/users/${id}/consent`,
      headers: { cookie: browser.cookie },
      payload: { dataTypes: ['steps'] },
    })
    expect(response.statusCode).toBe(200)
    expect(response.json().dataTypes).toEqual(['steps'])
    expect(await redis.hget(userKey(prefix, id), USER_FIELDS.dataTypes)).toBe('steps')
  })

  it('sends new scopes through Google consent again: 409 with a re-consent link in the API, a redirect on the page', async () => {
    const account = `carol-${Date.now()}`
    const { browser, id } = await connectedUser(['activity'], account)
    const api = await service.server.inject({ method: 'PUT', url: `/users/${id}/consent`, headers: admin, payload: { dataTypes: ['steps', 'sleep'] } })
    expect(api.statusCode).toBe(409)
    expect(api.json()).toMatchObject({ code: 'FST_ERR_CONSENT_NEEDS_GOOGLE', missingScopes: [`${SCOPE}sleep.read`] })
    expect(api.json().reconsentUrl).toMatch(/^http:\/\/fitstream\.test\/reconnect\?/)

    const page = await post(browser, '/account/consent', form(browser, ['activity', 'sleep']))
    expect(page.statusCode).toBe(303)
    const authorize = new URL(page.headers.location as string)
    expect(authorize.searchParams.get('scope')!.split(' ')).toEqual(['openid', `${SCOPE}activity.read`, `${SCOPE}sleep.read`])
    expect(await callback(browser, await consent(authorize, { account }))).toMatchObject({
      statusCode: 303,
      headers: { location: '/account?notice=reconnected' },
    })
    const stored = await redis.hgetall(userKey(prefix, id))
    expect(stored[USER_FIELDS.dataTypes]).toContain('sleep')
    expect(decodeScopes(stored[USER_FIELDS.scopes])).toContain(`${SCOPE}sleep.read`)
  })
})

describe('re-consent after Google refuses the refresh token', () => {
  it('offers a re-consent link on the page and in the API, and reconnecting resumes the same user', async () => {
    const account = `dave-${Date.now()}`
    const { browser, id } = await connectedUser(['activity'], account)
    const oldToken = await redis.hget(userKey(prefix, id), USER_FIELDS.refreshToken)
    await redis.hset(userKey(prefix, id), USER_FIELDS.state, 'reauth_required', USER_FIELDS.lastError, 'invalid_grant')
    await redis.zrem(`${prefix}:schedule:sync`, id)

    const page = await service.server.inject({ method: 'GET', url: '/account', headers: { cookie: browser.cookie } })
    expect(page.body).toContain('href="/account/reconnect"')
    const api = (await service.server.inject({ method: 'GET', url: `/users/${id}`, headers: admin })).json()
    expect(api.links.reconnect).toMatch(/^http:\/\/fitstream\.test\/reconnect\?u=/)

    // The link works in a browser that has no session at all (e.g. from an email).
    const link = new URL(api.links.reconnect)
    const { browser: fresh, pressed } = await followLink(api.links.reconnect)
    expect(pressed.statusCode).toBe(303)
    const back = await callback(fresh, await consent(new URL(pressed.headers.location as string), { account }))
    expect(back.headers.location).toBe('/account?notice=reconnected')
    const stored = await redis.hgetall(userKey(prefix, id))
    expect(stored[USER_FIELDS.state]).toBe('active')
    expect(stored[USER_FIELDS.lastError]).toBeUndefined()
    expect(stored[USER_FIELDS.refreshToken]).not.toBe(oldToken)
    expect(await redis.zscore(`${prefix}:schedule:sync`, id)).not.toBeNull()

    link.searchParams.set('u', 'someone-else-123')
    expect((await service.server.inject({ method: 'GET', url: `${link.pathname}${link.search}` })).statusCode).toBe(400)
  })
})

describe('a deployment moved to the Google Health API', () => {
  const HEALTH = 'https://www.googleapis.com/auth/googlehealth.'
  // The same Redis, keys and secrets as the deployment above: the same people, now on the Health API.
  let health: ServiceRuntime
  const getUser = async (id: string) => (await health.server.inject({ method: 'GET', url: `/users/${id}`, headers: admin })).json()

  beforeAll(async () => {
    health = await createTokenService(loadConfig({ ...env, GOOGLE_DATA_API: 'health' }), silentLogger())
  })

  afterAll(async () => {
    await health?.close()
  })

  /** Every user of the deployment matching the query, walking `GET /users` page by page. */
  async function listUsers(query: string): Promise<Map<string, { links: { move: string | null } }>> {
    const found = new Map<string, { links: { move: string | null } }>()
    let cursor: string | null = '0'
    while (cursor !== null) {
      const response = await health.server.inject({ method: 'GET', url: `/users?${query}&cursor=${cursor}`, headers: admin })
      const page = response.json() as { users: { id: string; links: { move: string | null } }[]; nextCursor: string | null }
      for (const user of page.users) found.set(user.id, user)
      cursor = page.nextCursor
    }
    return found
  }

  it('offers only what the Health API has, asks Google for its read scopes and the settings scope only, and reads the person from it', async () => {
    const browser = await openOnboarding(health)
    const page = await health.server.inject({ method: 'GET', url: '/', headers: { cookie: browser.cookie } })
    expect(page.body).toContain('Connect Google Health')
    expect(page.body).toContain('value="heart_rate"')
    expect(page.body).toContain('value="sleep"')
    expect(page.body).not.toContain('value="blood_pressure"')
    expect(page.body).toContain('weight and body fat (weekly) and height (monthly), as averages over many people<')
    expect(page.body).toContain(
      'heart points and minutes of recorded workouts (walking, running, cycling, swimming or strength training), as daily averages over many people<',
    )
    expect(page.body).toContain('value="oxygen_saturation"')
    const authorize = await startConnect(browser, ['activity', 'heart_rate', 'sleep', 'blood_pressure'], health)
    // The settings scope is the person's time zone (their daily buckets are their local days).
    expect(authorize.searchParams.get('scope')!.split(' ')).toEqual([
      'openid',
      `${HEALTH}activity_and_fitness.readonly`,
      `${HEALTH}health_metrics_and_measurements.readonly`,
      `${HEALTH}sleep.readonly`,
      `${HEALTH}settings.readonly`,
    ])

    const { id } = await connectedUser(['activity', 'heart_rate'], undefined, health)
    const user = await getUser(id)
    expect(user).toMatchObject({ dataApi: 'health', state: 'active' })
    // Fit's activity segments have no Health API counterpart; the rest of the activity group does, and workouts,
    // floors and VO2 max join it, as resting heart rate, heart-rate variability and breathing rate join heart rate.
    expect([...user.dataTypes].sort()).toEqual([
      'active_minutes',
      'calories',
      'floors',
      'heart_minutes',
      'heart_rate',
      'heart_rate_variability',
      'respiratory_rate',
      'resting_heart_rate',
      'steps',
      'vo2_max',
      'workouts',
    ])
    expect([...user.scopes].sort()).toEqual([
      `${HEALTH}activity_and_fitness.readonly`,
      `${HEALTH}health_metrics_and_measurements.readonly`,
      `${HEALTH}settings.readonly`,
      'openid',
    ])
  })

  it('treats the settings scope as optional: someone who unticks it at Google keeps everything they chose', async () => {
    const browser = await openOnboarding(health)
    const authorize = await startConnect(browser, ['activity'], health)
    const back = await callback(browser, await consent(authorize, { untick: [`${HEALTH}settings.readonly`] }), health)
    expect(back.statusCode).toBe(303)
    expect(back.headers.location).not.toContain('partial')
    const id = await health.redis.hget(`${health.config.QUEUE_PREFIX}:session:${browser.sessionId()!}`, 'userId')
    const user = await getUser(id!)
    expect(user).toMatchObject({ dataApi: 'health', state: 'active' })
    expect([...user.dataTypes].sort()).toEqual(['active_minutes', 'calories', 'floors', 'heart_minutes', 'steps', 'vo2_max', 'workouts'])
    expect(user.scopes).not.toContain(`${HEALTH}settings.readonly`)
  })

  it('moves a person connected through Fit over when they next save their choices, keeping them the same user', async () => {
    const account = `erin-${Date.now()}`
    const { browser, id } = await connectedUser(['activity'], account)
    expect(await getUser(id)).toMatchObject({ dataApi: 'fit' })
    // The operator finds who is still on Fit, each with a link that moves them.
    const stillOnFit = await listUsers('dataApi=fit')
    expect(stillOnFit.get(id)?.links.move).toMatch(/\/reconnect\?/)
    expect([...(await listUsers('dataApi=health')).keys()]).not.toContain(id)
    // Someone who sells only what the Health API lacks has nothing to move.
    const bloodPressureOnly = await connectedUser(['blood_pressure'])
    expect((await listUsers('dataApi=fit')).get(bloodPressureOnly.id)?.links.move).toBeNull()
    const nothingToMove = await health.server.inject({ method: 'GET', url: '/account', headers: { cookie: bloodPressureOnly.browser.cookie } })
    expect(nothingToMove.body).toContain('read from Google Fit')
    expect(nothingToMove.body).not.toContain('Move to Google Health.')
    const move = new URL(stillOnFit.get(id)!.links.move!)
    const { pressed: followed } = await followLink(move.toString(), health)
    expect(followed.statusCode).toBe(303)
    expect(new URL(followed.headers.location as string).searchParams.get('scope')).toBe(
      `openid ${HEALTH}activity_and_fitness.readonly ${HEALTH}settings.readonly`,
    )
    const page = await health.server.inject({ method: 'GET', url: '/account', headers: { cookie: browser.cookie } })
    expect(page.body).toContain('Move to Google Health.')
    expect(page.body).toContain('read through Google Fit')

    // Even narrowing needs Google now: the grant they have is for an API that is going away.
    const api = await health.server.inject({ method: 'PUT', url: `/users/${id}/consent`, headers: admin, payload: { dataTypes: ['steps'] } })
    expect(api.statusCode).toBe(409)
    expect(api.json()).toMatchObject({ code: 'FST_ERR_CONSENT_NEEDS_GOOGLE', missingScopes: [`${HEALTH}activity_and_fitness.readonly`] })

    const saved = await post(browser, '/account/consent', form(browser, ['activity']), health)
    expect(saved.statusCode).toBe(303)
    const authorize = new URL(saved.headers.location as string)
    expect(authorize.searchParams.get('scope')).toBe(`openid ${HEALTH}activity_and_fitness.readonly ${HEALTH}settings.readonly`)
    expect(await callback(browser, await consent(authorize, { account }), health)).toMatchObject({ headers: { location: '/account?notice=reconnected' } })
    const moved = await getUser(id)
    expect(moved).toMatchObject({ id, dataApi: 'health', state: 'active' })
    // Activity segments end with Fit; the workouts the Activity choice names on the Health API take their place.
    expect([...moved.dataTypes].sort()).toEqual(['active_minutes', 'calories', 'floors', 'heart_minutes', 'steps', 'vo2_max', 'workouts'])
    const after = await health.server.inject({ method: 'GET', url: '/account', headers: { cookie: browser.cookie } })
    expect(after.body).not.toContain('Move to Google Health.')
    expect([...(await listUsers('dataApi=fit')).keys()]).not.toContain(id)
    expect((await listUsers('dataApi=health')).get(id)?.links.move).toBeNull()
  })

  it('refuses consent to data the Health API does not have, naming it', async () => {
    const { id } = await connectedUser(['activity'], undefined, health)
    const response = await health.server.inject({
      method: 'PUT',
      url: `/users/${id}/consent`,
      headers: admin,
      payload: { dataTypes: ['steps', 'blood_pressure'] },
    })
    expect(response.statusCode).toBe(400)
    expect(response.json()).toMatchObject({
      code: 'FST_ERR_CONSENT_UNAVAILABLE',
      message: 'blood_pressure cannot be read from the Google Health API this deployment uses',
    })
    expect((await getUser(id)).dataTypes).not.toContain('blood_pressure')
  })
})

describe('after Google closes the Fitness API', () => {
  const HEALTH = 'https://www.googleapis.com/auth/googlehealth.'
  // A deployment of its own: people connect while Fit is open; then its clock is past Fit's closing,
  // first still on Fit, then moved to the Health API. Only one instance at a time runs its workers.
  const closedPrefix = uniquePrefix('fit-closed')
  const closedRedis = testRedis(closedPrefix)
  const CLOSED = { GOOGLE_FIT_CLOSES_AT: '2026-01-01T00:00:00Z' }
  let whileOpen: ServiceRuntime
  let onFit: ServiceRuntime
  let onHealth: ServiceRuntime
  const get = async (svc: ServiceRuntime, url: string) => svc.server.inject({ method: 'GET', url, headers: admin })
  const fetchJobsOf = async (id: string) =>
    ((await whileOpen.queues.queue('fetch').getJobs(['waiting', 'prioritized'])) as { data: { userId: string } }[]).filter((j) => j.data.userId === id)
  const closed = new Set<ServiceRuntime>()
  const close = async (svc: ServiceRuntime | undefined) => {
    if (svc === undefined || closed.has(svc)) return
    closed.add(svc)
    await svc.close()
  }

  beforeAll(async () => {
    const env = testEnv(google, closedPrefix)
    whileOpen = await createTokenService(loadConfig(env), silentLogger())
    onFit = await createTokenService(loadConfig({ ...env, ...CLOSED }), silentLogger())
    onHealth = await createTokenService(loadConfig({ ...env, ...CLOSED, GOOGLE_DATA_API: 'health' }), silentLogger())
  })

  afterAll(async () => {
    for (const svc of [whileOpen, onFit, onHealth]) await close(svc)
    await closedRedis.cleanup()
  })

  it('pauses people still on Fit as move_required, with nothing fetched or dead-lettered, until they move; then they are read from the Health API', async () => {
    const closedAccount = `frank-${Date.now()}`
    const { browser, id } = await connectedUser(['activity', 'heart_rate'], closedAccount, whileOpen)
    onFit.start()
    await waitFor(async () => (await get(onFit, `/users/${id}`)).json().state === 'move_required')
    const paused = (await get(onFit, `/users/${id}`)).json()
    expect(paused).toMatchObject({ dataApi: 'fit', nextSyncAt: null, lastSyncStatus: 'move_required', links: { move: null } })
    const why =
      'Google Fitness API closed on 2026-01-01T00:00:00.000Z: this deployment still reads people from it; set GOOGLE_DATA_API=health, then have them move'
    expect(paused.lastError).toBe(why)
    expect(await fetchJobsOf(id)).toEqual([])
    expect(await onFit.queues.deadLetterQueue('sync').getJobCounts('waiting')).toEqual({ waiting: 0 })
    expect((await onFit.server.inject({ method: 'POST', url: `/users/${id}/sync`, headers: admin })).json().message).toBe(`user is move_required: ${why}`)
    expect((await get(onFit, '/metrics')).body).toMatch(/fitstream_users\{state="move_required"[^}]*\} 1\b/)
    // Nobody new is connected through Fit any more: not on the page, not with a refresh token.
    const onboarding = await onFit.server.inject({ method: 'GET', url: '/' })
    expect(onboarding.statusCode).toBe(503)
    expect(onboarding.body).toContain('Google Fit has closed')
    const pasted = await onFit.server.inject({
      method: 'POST',
      url: '/users',
      headers: admin,
      payload: { refreshToken: google.addUser().refreshToken, dataTypes: ['steps'] },
    })
    expect(pasted.statusCode).toBe(400)
    expect(pasted.json()).toMatchObject({ code: 'FST_ERR_API_CLOSED' })
    expect(await closedRedis.redis.scard(`${closedPrefix}:users`)).toBe(1)

    // The operator switches the deployment to the Health API and finds who must move.
    await close(onFit)
    onHealth.start()
    const listed = (await get(onHealth, '/users?state=move_required')).json() as { users: { id: string; links: { move: string | null } }[] }
    expect(listed.users.map((u) => u.id)).toEqual([id])
    expect((await get(onHealth, '/users?state=active')).json().users).toEqual([])
    const page = await onHealth.server.inject({ method: 'GET', url: '/account?notice=constructor', headers: { cookie: browser.cookie } })
    expect(page.statusCode).toBe(200)
    expect(page.body).toContain('Google Fit has closed.')
    expect(page.body).toContain('paused: move to Google Health needed')
    expect(page.body).not.toContain('Move to Google Health.')

    const { browser: linkBrowser, pressed: followed } = await followLink(listed.users[0]!.links.move!, onHealth)
    const authorize = new URL(followed.headers.location as string)
    expect(authorize.searchParams.get('scope')!.split(' ')).toEqual([
      'openid',
      `${HEALTH}activity_and_fitness.readonly`,
      `${HEALTH}health_metrics_and_measurements.readonly`,
      `${HEALTH}settings.readonly`,
    ])
    // The link may be opened anywhere: it starts a session of its own, which Google's answer comes back to.
    const back = await callback(linkBrowser, await consent(authorize, { account: closedAccount }), onHealth)
    expect(back.headers.location).toBe('/account?notice=reconnected')
    const moved = (await get(onHealth, `/users/${id}`)).json()
    // What the Health API lacks (Fit's activity segments) is no longer sold.
    expect(moved).toMatchObject({ state: 'active', dataApi: 'health', lastError: null, links: { move: null } })
    expect([...moved.dataTypes].sort()).toEqual(['active_minutes', 'calories', 'heart_minutes', 'heart_rate', 'steps'])
    expect(moved.nextSyncAt).not.toBeNull()
    const welcome = await onHealth.server.inject({ method: 'GET', url: '/account?notice=reconnected', headers: { cookie: browser.cookie } })
    expect(welcome.body).toContain('Google Health is connected again.')
    // Their first sync on the Health API plans their windows, and they no longer count as waiting to move.
    await waitFor(async () => (await fetchJobsOf(id)).length > 0)
    expect((await get(onHealth, '/metrics')).body).toMatch(/fitstream_users\{state="move_required"[^}]*\} 0\b/)
    expect((await get(onHealth, '/users?state=move_required')).json().users).toEqual([])
  })

  it('resumes the people it paused when Google keeps Fit open longer and the date is moved', async () => {
    await close(onHealth)
    const env = { ...testEnv(google, closedPrefix), GOOGLE_DATA_API: 'health' }
    const pausing = await createTokenService(loadConfig({ ...env, ...CLOSED }), silentLogger())
    let id: string
    try {
      pausing.start()
      id = (await connectedUser(['heart_rate'], undefined, whileOpen)).id
      await waitFor(async () => (await get(pausing, `/users/${id}`)).json().state === 'move_required')
    } finally {
      await pausing.close()
    }
    // Restarted with the later date (here the fake's: Google keeps Fit until 2100).
    const later = await createTokenService(loadConfig(env), silentLogger())
    try {
      later.start()
      await waitFor(async () => {
        const user = (await get(later, `/users/${id}`)).json()
        return user.state === 'active' && user.lastError === null && user.nextSyncAt !== null
      })
      expect((await get(later, `/users/${id}`)).json()).toMatchObject({ dataApi: 'fit', state: 'active' })
      expect((await get(later, '/users?state=move_required')).json().users).toEqual([])
    } finally {
      await later.close()
    }
  })
})

describe('erasure', () => {
  it('revokes at Google and removes tokens, schedule, privacy state, sessions and every job naming the user', async () => {
    const { browser, id } = await connectedUser(['activity'])
    const window = { startMs: 0, endMs: 3_600_000 }
    await service.queues.add(
      'fetch',
      { syncId: 's1', userId: id, dataTypes: ['steps'], window, bucketMs: 3_600_000 },
      { jobId: `fetch-${id}-0`, delay: 60_000 },
    )
    await service.queues.add('anonymize', { syncId: 's1', userId: id, window, samples: [] })
    await service.queues.add('fetch', { syncId: 's2', userId: 'somebody-else-1', dataTypes: ['steps'], window, bucketMs: 3_600_000 })
    await service.queues.addDeadLetter(
      'fetch',
      {
        stage: 'fetch',
        jobId: 'x',
        jobName: 'fetch',
        payload: { userId: id },
        error: { code: 'E', name: 'E', message: 'm' },
        permanent: true,
        attemptsMade: 1,
        maxAttempts: 1,
        createdAt: new Date().toISOString(),
        firstAttemptAt: null,
        failedAt: new Date().toISOString(),
      },
      `dlq-${id}`,
    )
    await redis.set(`${prefix}:privacy:${id}`, 'budget')
    await redis.set(`${prefix}:privacy:${id}:epoch:2026-11`, '1')

    const response = await service.server.inject({ method: 'DELETE', url: `/users/${id}`, headers: { cookie: browser.cookie } })
    expect(response.statusCode).toBe(200)
    const receipt = response.json()
    expect(receipt).toMatchObject({
      id,
      googleAccess: 'revoked',
      erased: { account: true, tokens: true, syncCursor: true, consent: true, schedule: true, privacyState: 2, sessions: 1 },
      notRecalled: { runningJobs: {} },
    })
    expect(receipt.erased.jobs).toMatchObject({ sync: 1, fetch: 1, anonymize: 1, 'fetch-dlq': 1 })
    expect(receipt.note).toMatch(/cannot be recalled/)
    expect(await redis.exists(userKey(prefix, id), `${prefix}:privacy:${id}`, `${prefix}:privacy:${id}:epoch:2026-11`)).toBe(0)
    const left = await service.queues.queue('fetch').getJobs(['waiting', 'delayed'])
    expect(left.map((j) => j.data.userId)).toEqual(['somebody-else-1'])
    // The session is gone too, and Google no longer honours the grant.
    expect((await service.server.inject({ method: 'GET', url: '/account', headers: { cookie: browser.cookie } })).statusCode).toBe(401)
  })

  it('has a delete button on the user’s page that returns a receipt page', async () => {
    const { browser, id } = await connectedUser(['body'])
    const page = await post(browser, '/account/delete', new URLSearchParams({ csrf: browser.csrf }).toString())
    expect(page.statusCode).toBe(200)
    expect(page.body).toContain('Your data is deleted')
    expect(page.body).toContain('revoked at Google')
    expect(page.body).toContain('cannot be recalled')
    expect(await redis.exists(userKey(prefix, id))).toBe(0)
  })

  it('revokes the grant at Google so the refresh token no longer works', async () => {
    const user = google.addUser()
    const created = await service.server.inject({
      method: 'POST',
      url: '/users',
      headers: admin,
      payload: { refreshToken: user.refreshToken, dataTypes: ['steps'] },
    })
    const erased = await service.server.inject({ method: 'DELETE', url: `/users/${created.json().id}`, headers: admin })
    expect(erased.json().googleAccess).toBe('revoked')
    const client = new googleapis.auth.OAuth2({ clientId: google.clientId, clientSecret: google.clientSecret, endpoints: { oauth2TokenUrl: google.tokenUrl } })
    client.setCredentials({ refresh_token: user.refreshToken })
    await expect(client.refreshAccessToken()).rejects.toMatchObject({ response: { data: { error: 'invalid_grant' } } })
  })
})

describe('what the pages promise (safer defaults, honest words)', () => {
  const policy = parseYaml(readFileSync(new URL('../../anonymizer/policies/default.yaml', import.meta.url), 'utf8')) as {
    types: Record<
      string,
      { release: string; individual?: { consent?: string; granularity: string; fields: Record<string, unknown> }; cohort?: { window: string } }
    >
  }
  const checked = (body: string, name: string) =>
    [...body.matchAll(new RegExp(`<input type="checkbox" name="${name}" value="([a-z_]+)"( checked)?>`, 'g'))].map(([, value, on]) => [value, on !== undefined])
  const words = (body: string) => body.replace(/<[^>]+>/g, '')
  const storedIndividual = async (id: string) => ((await redis.hget(userKey(prefix, id), USER_FIELDS.individualTypes)) ?? '').split(',').filter((t) => t !== '')

  it('offers individual records for exactly the default policy’s opt-in types, and names every group’s cohort windows, never hours', () => {
    const optIn = Object.entries(policy.types).filter(([, t]) => t.individual !== undefined && (t.individual.consent ?? 'opt-in') === 'opt-in')
    expect(Object.keys(INDIVIDUAL_OFFERS).sort()).toEqual(optIn.map(([key]) => key).sort())
    for (const [, t] of optIn) expect(t.individual!.granularity).toBe('hour')
    expect(Object.keys(policy.types.heart_rate!.individual!.fields)).toEqual(['avg'])
    expect(INDIVIDUAL_OFFERS.heart_rate).toContain('average heart rate per hour')
    const windows = Object.fromEntries(Object.entries(policy.types).flatMap(([key, t]) => (t.cohort === undefined ? [] : [[key, t.cohort.window]])))
    expect(COHORT_WINDOWS).toEqual(windows)
    const named = { day: 'daily', week: 'weekly', month: 'monthly' } as const
    for (const group of [...consentGroups('fit'), ...consentGroups('health')]) {
      expect(group.description).toContain('averages over many people')
      expect(group.description).not.toMatch(/hour/i)
      const theirs = new Set(group.dataTypes.map((key) => COHORT_WINDOWS[key]!))
      for (const [window, word] of Object.entries(named))
        expect([group.group, group.description.includes(word)]).toEqual([group.group, theirs.has(window as 'day')])
    }
  })

  it('shows every individual-record box off, in the words of PRIVACY.md, and never says anonymised or a random code', async () => {
    const page = await service.server.inject({ method: 'GET', url: '/' })
    const boxes = checked(page.body, 'individual')
    expect(boxes.map(([key]) => key).sort()).toEqual(Object.keys(INDIVIDUAL_OFFERS).sort())
    expect(boxes.every(([, on]) => on === false)).toBe(true)
    expect(checked(page.body, 'groups').every(([, on]) => on === false)).toBe(true)
    const text = words(page.body)
    expect(text).toContain(
      'Also sell my steps as individual hourly records — pseudonymised, not anonymous: someone who knows your routine may find your records. Your records of every type share one code each month.',
    )
    expect(text).toContain('Averages over many people, with random noise added; never your own records.')
    expect(text).toContain('a code that changes every month')
    expect(text).toContain('average heart rate per hour, never the highest or lowest')
    expect(text).not.toMatch(/anonymised|anonymized|random code|highest, lowest|per hour;/i)
    // Only the individual opt-ins speak of hours; a group sold only as cohorts is daily, weekly or monthly.
    for (const line of text.split('\n').filter((l) => /hour/.test(l))) expect(line).toMatch(/Also sell my|once an hour|whole hour|hourly records/)
  })

  it('connects with no individual records unless a box is ticked, and with a ticked box stores just that type', async () => {
    const plain = await connectedUser(['activity', 'heart_rate'])
    expect(await storedIndividual(plain.id)).toEqual([])

    const steps = await connectedUser(['activity', 'heart_rate'], undefined, service, ['steps'])
    expect(await storedIndividual(steps.id)).toEqual(['steps'])
    expect(await redis.hget(userKey(prefix, steps.id), USER_FIELDS.individualTypes)).toBe('steps')
    const me = await steps.browser.get(service, '/account')
    expect(checked(me.body, 'individual').filter(([, on]) => on)).toEqual([['steps', true]])
    expect(words(me.body)).toContain('steps taken, pseudonymised hourly records')
    expect(words(me.body)).not.toMatch(/anonymised/i)

    // A box for data not sold at all is dropped: heart rate's records need the heart-rate group.
    const lone = await connectedUser(['activity'], undefined, service, ['heart_rate', 'calories'])
    expect(await storedIndividual(lone.id)).toEqual(['calories'])
  })

  it('stores the account page’s choice, and an unticked box stops individual records, without Google', async () => {
    const { browser, id } = await connectedUser(['activity'])
    const before = await browser.get(service, '/account')
    expect(checked(before.body, 'individual')).toEqual(['steps', 'calories', 'active_minutes', 'heart_minutes', 'heart_rate'].map((k) => [k, false]))
    expect(words(before.body)).toContain('none: only averages over many people')

    const ticked = await post(browser, '/account/consent', form(browser, ['activity'], {}, ['steps']))
    expect(ticked).toMatchObject({ statusCode: 303, headers: { location: '/account?notice=consent' } })
    expect(await storedIndividual(id)).toEqual(['steps'])
    expect((await service.server.inject({ method: 'GET', url: `/users/${id}`, headers: { cookie: browser.cookie } })).json().individualTypes).toEqual(['steps'])

    expect((await post(browser, '/account/consent', form(browser, ['activity']))).statusCode).toBe(303)
    expect(await storedIndividual(id)).toEqual([])
    // A type the policy sells only as cohorts cannot be ticked.
    expect((await post(browser, '/account/consent', form(browser, ['activity', 'body'], {}, ['weight']))).statusCode).toBe(403)
    expect(await storedIndividual(id)).toEqual([])
  })

  it('applies the choice at once when more data sends the person to Google first (an opt-out needs no consent screen), and keeps it after', async () => {
    const account = `dana-${Date.now()}`
    const { browser, id } = await connectedUser(['activity'], account, service, ['steps', 'calories'])
    const more = await post(browser, '/account/consent', form(browser, ['activity', 'heart_rate'], {}, ['steps', 'heart_rate']))
    expect(more.statusCode).toBe(303)
    expect(await storedIndividual(id)).toEqual(['steps', 'heart_rate'])
    expect(await callback(browser, await consent(new URL(more.headers.location as string), { account }))).toMatchObject({ statusCode: 303 })
    expect(await storedIndividual(id)).toEqual(['steps', 'heart_rate'])
    expect(await redis.hget(userKey(prefix, id), USER_FIELDS.dataTypes)).toContain('heart_rate')
  })

  it('calls published records pseudonymised and cohort rows noisy averages on the deletion receipt', async () => {
    const { browser } = await connectedUser(['activity'], undefined, service, ['steps'])
    const page = await post(browser, '/account/delete', new URLSearchParams({ csrf: browser.csrf }).toString())
    expect(page.statusCode).toBe(200)
    const text = words(page.body)
    expect(text).toContain('Pseudonymised records already published')
    expect(text).toContain('noisy averages over many people')
    expect(text).toContain('Your contributions to cohort averages not yet published are queued for removal')
    expect(text).not.toMatch(/anonymised|random code/i)
  })
})

describe('API documentation', () => {
  it('serves OpenAPI at /docs with every route and its schema', async () => {
    const spec = (await service.server.inject({ method: 'GET', url: '/docs/json' })).json()
    expect(Object.keys(spec.paths)).toEqual(
      expect.arrayContaining(['/users', '/users/{id}', '/users/{id}/consent', '/users/{id}/sync', '/', '/connect', '/oauth/callback', '/account']),
    )
    expect(spec.paths['/users/{id}/consent'].put.requestBody).toBeDefined()
    expect(spec.components.securitySchemes.session).toMatchObject({ type: 'apiKey', in: 'cookie' })
    expect((await service.server.inject({ method: 'GET', url: '/docs' })).statusCode).toBeLessThan(400)
  })
})
