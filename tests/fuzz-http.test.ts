import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { FakeGoogle } from '@fitstream/fake-google'
import type { ServiceRuntime } from '@fitstream/shared'
import { loadConfig } from '../services/token-service/src/config.js'
import { createTokenService } from '../services/token-service/src/service.js'
import { ADMIN, INTERNAL, testEnv } from '../services/token-service/test/support.js'
import { silentLogger, testRedis, uniquePrefix } from './helpers.js'

/**
 * Every HTTP route the token service serves (its own, Bull Board's, the API docs' and the health and
 * metrics routes every service shares), listed from the running app and fed malformed, oversized,
 * mistyped and unauthenticated requests. Each answer must be a clear 4xx (or a documented 2xx/3xx),
 * never a 5xx or a hang, and the service must go on serving afterwards.
 */

const SEED = 20_240_611
const ANSWER_WITHIN_MS = 5_000
const BODY_LIMIT = 16 * 1024
const FORM_LIMIT = 4 * 1024
const CONCURRENCY = 8

const prefix = uniquePrefix('fuzz-http')
const { redis, cleanup } = testRedis(prefix)
let google: FakeGoogle
let service: ServiceRuntime
const app = (): FastifyInstance => service.server

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
type Kind = 'api' | 'page' | 'docs' | 'board-api' | 'board-ui'
interface Route {
  readonly method: Method
  /** As registered, with `:param` and `*` in it. */
  readonly path: string
  readonly kind: Kind
  /** What the OpenAPI document says about it; Bull Board's routes and the shared ones are not in it. */
  readonly doc: OperationDoc | undefined
}
interface Schema {
  readonly type?: string | readonly string[]
  readonly anyOf?: readonly Schema[]
  readonly oneOf?: readonly Schema[]
  readonly properties?: Readonly<Record<string, Schema>>
}
interface OperationDoc {
  readonly tags?: readonly string[]
  readonly security?: readonly Readonly<Record<string, unknown>>[]
  readonly parameters?: readonly { readonly in: string; readonly name: string; readonly schema?: Schema }[]
  readonly requestBody?: { readonly content: Readonly<Record<string, { readonly schema?: Schema }>> }
}

interface Browser {
  readonly cookie: string
  readonly csrf: string
  readonly sessionId: string
}

/** One request and what, beyond the rules every answer obeys, its answer must be. */
interface Probe {
  readonly route: Route
  readonly what: string
  readonly request: InjectOptions
  readonly expect?: (response: LightMyRequestResponse) => string | undefined
}

const tally = { cases: 0, serverErrors: 0 }
let routes: Route[] = []
/** A user who connected through the onboarding pages, and their browser. */
let owner: Browser & { userId: string }
/** A browser that opened the onboarding page but never connected. */
let stranger: Browser
/** A user an operator registered; the owner's session must not reach it. */
let otherUserId: string
let googleIds: string[] = []
let refreshTokens: string[] = []

const admin = { authorization: `Bearer ${ADMIN}` }
const b64 = (text: string) => Buffer.from(text).toString('base64')

beforeAll(async () => {
  google = await FakeGoogle.start()
  service = await createTokenService(loadConfig(testEnv(google, prefix)), silentLogger())
  await app().ready()
  routes = await listRoutes()

  const registered = google.addUser()
  const created = await app().inject({
    method: 'POST',
    url: '/users',
    headers: admin,
    payload: { refreshToken: registered.refreshToken, dataTypes: ['steps'] },
  })
  expect(created.statusCode).toBe(201)
  otherUserId = (created.json() as { id: string }).id
  stranger = await openOnboarding()
  owner = await connect(await openOnboarding())
  googleIds = google.listUsers().map((u) => u.googleId)
  refreshTokens = google.listUsers().map((u) => u.refreshToken)
})

afterAll(async () => {
  process.stdout.write(
    `fuzz-http: ${tally.cases} cases over ${new Set(routes.map((r) => r.path)).size} routes (${routes.length} route methods), ${tally.serverErrors} server errors\n`,
  )
  await service?.close()
  await google?.close()
  await cleanup()
})

/**
 * The routes as the running app has them: Fastify's radix tree, printed one path piece per line
 * (`│   └── ead-letters (GET, HEAD, DELETE)` under `├── d`), joined back into paths.
 */
async function listRoutes(): Promise<Route[]> {
  const docs = (await app().inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, OperationDoc>> }
  const listed: Route[] = []
  const pieces: string[] = []
  for (const line of app().printRoutes().split('\n')) {
    const match = /^([│ ]*)[├└]── (.+?)(?: \(([A-Z, ]+)\))?$/.exec(line)
    if (match === null) continue
    pieces.length = match[1]!.length / 4
    pieces.push(match[2]!)
    const path = pieces.join('')
    for (const method of match[3]?.split(', ') ?? []) {
      const doc = docs.paths[path.replace(/:(\w+)/g, '{$1}')]?.[method === 'HEAD' ? 'get' : method.toLowerCase()]
      listed.push({ method: method as Method, path, kind: kindOf(path, doc), doc })
    }
  }
  return listed
}

function kindOf(path: string, doc: OperationDoc | undefined): Kind {
  if (path.startsWith('/admin/queues/api/')) return 'board-api'
  if (path.startsWith('/admin/queues')) return 'board-ui'
  if (path.startsWith('/docs')) return 'docs'
  return doc?.tags?.includes('pages') === true ? 'page' : 'api'
}

/** Routes anyone may call; every other route must refuse a request that proves nothing. */
const PUBLIC = new Set([
  ...['/', '/healthz', '/readyz', '/metrics', '/connect', '/oauth/callback', '/reconnect'],
  // Passkey sign-up and sign-in: anyone may start them; a response counts only from the session its challenge went to.
  ...['/passkey', '/passkey/register/options', '/passkey/register', '/passkey/sign-in/options', '/passkey/sign-in'],
])
const isPublic = (route: Route) => PUBLIC.has(route.path) || route.kind === 'docs'
const acceptsSession = (route: Route) => route.kind === 'page' || route.doc?.security?.some((s) => 'session' in s) === true
const hasBody = (route: Route) => route.method !== 'GET' && route.method !== 'HEAD'
const label = (route: Route) => `${route.method} ${route.path}`

/** Harmless values for path parameters, so only the piece under test is odd. */
const PLAIN_PARAMS: Readonly<Record<string, string>> = {
  id: 'abcdefgh12345678',
  stage: 'fetch',
  queueName: 'fetch',
  jobId: 'no-such-job',
  queueStatus: 'failed',
  schedulerId: 'no-such-scheduler',
  '*': 'no-such-file.js',
}

function urlOf(route: Route, params: Readonly<Record<string, string>> = {}): string {
  return route.path.replace(/:(\w+)|\*/g, (whole, name: string | undefined) => params[name ?? whole] ?? PLAIN_PARAMS[name ?? whole] ?? 'x')
}

function paramsOf(route: Route): string[] {
  return [...route.path.matchAll(/:(\w+)|\*/g)].map((m) => m[1] ?? '*')
}

/** The credentials a route's own callers use. */
function rightCredentials(route: Route): Record<string, string> {
  if (route.kind === 'page') return { cookie: owner.cookie }
  if (route.path.startsWith('/internal/')) return { authorization: `Bearer ${INTERNAL}` }
  return admin
}

async function answerWithin(request: InjectOptions): Promise<LightMyRequestResponse | undefined> {
  let timer: NodeJS.Timeout | undefined
  const hang = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ANSWER_WITHIN_MS)
  })
  return Promise.race([app().inject(request), hang]).finally(() => clearTimeout(timer))
}

/** A 4xx from an API route is JSON that says what was wrong. */
function unclearError(route: Route, response: LightMyRequestResponse): string | undefined {
  if (response.statusCode < 400 || route.method === 'HEAD' || (route.kind !== 'api' && route.kind !== 'board-api')) return undefined
  if (!String(response.headers['content-type']).startsWith('application/json')) return `a ${response.statusCode} as ${response.headers['content-type']}`
  let body: { error?: unknown; message?: unknown }
  try {
    body = response.json()
  } catch {
    return `a ${response.statusCode} whose body is not JSON`
  }
  if (route.kind === 'board-api' && typeof body.error === 'object' && body.error !== null) return undefined
  if (typeof body.error !== 'string' || typeof body.message !== 'string' || body.message === '') {
    return `a ${response.statusCode} that does not name the problem: ${response.body.slice(0, 200)}`
  }
  return undefined
}

/**
 * Sends every probe (a few at a time) and returns what went wrong, one line per probe. Changes to
 * Bull Board's queues go one at a time: the board checks a queue is paused before obliterating it,
 * and a resume landing in between turns its refusal into a 500, a race no operator runs against themselves.
 */
async function run(probes: readonly Probe[]): Promise<string[]> {
  const problems: string[] = []
  const boardChange = (probe: Probe) => probe.route.kind === 'board-api' && hasBody(probe.route)
  const lanes = [probes.filter((p) => !boardChange(p)), probes.filter(boardChange)]
  const drain = async (queue: Probe[]): Promise<void> => {
    for (let probe = queue.shift(); probe !== undefined; probe = queue.shift()) {
      tally.cases++
      const where = `${label(probe.route)} ${probe.what} (${probe.request.method} ${String(probe.request.url).slice(0, 120)})`
      const response = await answerWithin(probe.request)
      if (response === undefined) {
        problems.push(`${where}: no answer within ${ANSWER_WITHIN_MS} ms`)
        continue
      }
      if (response.statusCode >= 500) {
        tally.serverErrors++
        problems.push(`${where}: ${response.statusCode} ${response.body.slice(0, 300)}`)
        continue
      }
      const complaint = unclearError(probe.route, response) ?? probe.expect?.(response)
      if (complaint !== undefined) problems.push(`${where}: ${complaint}`)
    }
  }
  await Promise.all([...Array.from({ length: CONCURRENCY }, () => drain(lanes[0]!)), drain(lanes[1]!)])
  return problems
}

const statusIn =
  (...allowed: number[]) =>
  (response: LightMyRequestResponse) =>
    allowed.includes(response.statusCode) ? undefined : `answered ${response.statusCode}, expected ${allowed.join(' or ')}: ${response.body.slice(0, 200)}`

/** Every fast-check sample is derived from SEED and the route, so adding a route changes no other route's cases. */
function samples<T>(route: Route, what: string, arbitrary: fc.Arbitrary<T>, numRuns: number): T[] {
  let seed = SEED
  for (const char of `${label(route)} ${what}`) seed = (Math.imul(seed, 31) + char.charCodeAt(0)) | 0
  return fc.sample(arbitrary, { seed, numRuns })
}

async function openOnboarding(): Promise<Browser> {
  const page = await app().inject({ method: 'GET', url: '/' })
  // A page view makes no session; the form's token is checked against a cookie of its own.
  const cookie = page.cookies.find((c) => c.name === 'fitstream_form')
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1]
  if (cookie === undefined || csrf === undefined) throw new Error(`the onboarding page set no form cookie: ${page.statusCode}`)
  expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax' })
  return { cookie: `fitstream_form=${encodeURIComponent(cookie.value)}`, csrf, sessionId: '' }
}

/** What a person does: ticks a box, consents at (the fake) Google, and comes back signed in. */
async function connect(browser: Browser): Promise<Browser & { userId: string }> {
  const form = new URLSearchParams({ groups: 'activity', csrf: browser.csrf }).toString()
  const started = await app().inject({
    method: 'POST',
    url: '/connect',
    headers: { cookie: browser.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: form,
  })
  expect(started.statusCode).toBe(303)
  const authorize = new URL(started.headers.location as string)
  const screen = await (await fetch(authorize)).text()
  const decision = new URLSearchParams({ request_id: /name="request_id" value="([^"]+)"/.exec(screen)![1]!, decision: 'allow', account: 'fuzz-person' })
  for (const [, scope] of screen.matchAll(/name="scope" value="([^"]+)"/g)) decision.append('scope', scope!)
  const back = await fetch(`${authorize.origin}${authorize.pathname}`, { method: 'POST', body: decision, redirect: 'manual' })
  const callback = new URL(back.headers.get('location')!)
  const sessionOf = (response: LightMyRequestResponse) => response.cookies.find((c) => c.name === 'fitstream_session')!.value
  const startedIn = `${browser.cookie}; fitstream_session=${encodeURIComponent(sessionOf(started))}`
  const signedIn = await app().inject({ method: 'GET', url: `${callback.pathname}${callback.search}`, headers: { cookie: startedIn } })
  expect(signedIn.statusCode).toBe(303)
  // Signing in renews the session id.
  const session = sessionOf(signedIn)
  const sessionId = decodeURIComponent(session).split('.')[0]!
  const userId = await redis.hget(`${prefix}:session:${sessionId}`, 'userId')
  if (userId === null) throw new Error('the callback did not sign the browser in')
  const cookie = `${browser.cookie}; fitstream_session=${encodeURIComponent(session)}`
  // The signed-in session's forms carry its own CSRF token.
  const account = await app().inject({ method: 'GET', url: '/account', headers: { cookie } })
  const csrf = /name="csrf" value="([^"]+)"/.exec(account.body)![1]!
  return { ...browser, cookie, csrf, sessionId, userId }
}

describe('the route list', () => {
  it('is read from the running app and covers every part of it', async () => {
    const listed = routes.map(label)
    for (const expected of [
      'GET /healthz',
      'GET /readyz',
      'GET /metrics',
      'POST /users',
      'GET /users/:id',
      'DELETE /users/:id',
      'PUT /users/:id/consent',
      'POST /internal/users/:id/access-token/refresh',
      'GET /dead-letters',
      'DELETE /dead-letters',
      'GET /dead-letters/entries',
      'GET /dead-letters/:stage/:id',
      'POST /dead-letters/:stage/:id/replay',
      'POST /dead-letters/replay',
      'GET /admin/queues',
      'GET /admin/queues/api/queues',
      'GET /admin/queues/static/*',
      'POST /connect',
      'POST /account/delete',
      'GET /docs/json',
    ]) {
      expect(listed).toContain(expected)
    }
    expect(routes.filter((r) => r.kind === 'board-api').length).toBeGreaterThan(10)
    // Everything the API documents is in the list, so the parsing of the route tree lost nothing.
    const docs = (await app().inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, unknown>> }
    for (const [path, operations] of Object.entries(docs.paths)) {
      for (const method of Object.keys(operations)) expect(listed).toContain(`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`)
    }
  })
})

describe('auth', () => {
  const forgedCookies = (): [string, Record<string, string>][] => [
    ['a forged session cookie', { cookie: 'fitstream_session=forged.c2lnbmF0dXJl' }],
    ['an unsigned session id', { cookie: `fitstream_session=${owner.sessionId}` }],
    ['a session cookie with a changed signature', { cookie: `${owner.cookie.slice(0, -1)}${owner.cookie.endsWith('A') ? 'B' : 'A'}` }],
    ['an empty session cookie', { cookie: 'fitstream_session=' }],
    ['a session cookie of odd bytes', { cookie: 'fitstream_session=%00%ff%2e%2e%2f' }],
    ['an anonymous session', { cookie: stranger.cookie }],
  ]
  const wrongTokens = (): [string, Record<string, string>][] => [
    ['no credentials', {}],
    ['a wrong bearer token', { authorization: 'Bearer wrong' }],
    ['an empty bearer token', { authorization: 'Bearer ' }],
    ['a bearer scheme and no token', { authorization: 'Bearer' }],
    ['the admin token and one more character', { authorization: `Bearer ${ADMIN}x` }],
    ['the admin token less its last character', { authorization: `Bearer ${ADMIN.slice(0, -1)}` }],
    ['the admin token without a scheme', { authorization: ADMIN }],
    ['the admin token under an unknown scheme', { authorization: `Token ${ADMIN}` }],
    ['Basic with a wrong password', { authorization: `Basic ${b64('operator:wrong')}` }],
    ['Basic with the token as user name', { authorization: `Basic ${b64(`${ADMIN}:`)}` }],
    ['Basic without a colon', { authorization: `Basic ${b64(ADMIN)}` }],
    ['Basic that is not base64', { authorization: 'Basic %%%' }],
  ]

  it('every route but the public ones refuses a request that proves nothing, with a 401 or 403', async () => {
    const probes: Probe[] = []
    for (const route of routes.filter((r) => !isPublic(r))) {
      const url = urlOf(route)
      const refused = statusIn(401, 403)
      for (const [what, headers] of [...wrongTokens(), ...forgedCookies()]) {
        probes.push({ route, what, request: { method: route.method, url, headers }, expect: refused })
      }
      const queryToken = `${url}?token=${ADMIN}&access_token=${ADMIN}`
      probes.push({ route, what: 'the admin token in the query string', request: { method: route.method, url: queryToken }, expect: refused })
      // A token is good for its own routes only.
      const otherToken = route.path.startsWith('/internal/') ? ADMIN : INTERNAL
      const headers = { authorization: `Bearer ${otherToken}` }
      probes.push({ route, what: "another kind of caller's token", request: { method: route.method, url, headers }, expect: refused })
      // A signed-in person may act on their own user only.
      if (route.kind !== 'page') {
        const elsewhere = urlOf(route, { id: otherUserId })
        probes.push({
          route,
          what: "the owner's session on another user",
          request: { method: route.method, url: elsewhere, headers: { cookie: owner.cookie } },
          expect: refused,
        })
      }
    }
    const problems = await run(probes)
    expect(problems).toEqual([])
    expect(probes.length).toBeGreaterThan(1000)
  })

  it('guards Bull Board, its UI, assets and API alike, asking the browser for credentials', async () => {
    const board = routes.filter((r) => r.kind === 'board-ui' || r.kind === 'board-api')
    const probes = board.map((route): Probe => ({
      route,
      what: 'no credentials',
      request: { method: route.method, url: urlOf(route) },
      expect: (response) =>
        response.statusCode === 401 && /^Basic realm="FitStream admin"/.test(String(response.headers['www-authenticate']))
          ? undefined
          : `answered ${response.statusCode} with www-authenticate ${response.headers['www-authenticate']}`,
    }))
    expect(await run(probes)).toEqual([])
  })

  it('a signed-in owner can read their own user, not the admin routes', async () => {
    const own = await app().inject({ method: 'GET', url: `/users/${owner.userId}`, headers: { cookie: owner.cookie } })
    expect(own.statusCode).toBe(200)
    for (const url of ['/dead-letters', '/dead-letters/entries', '/admin/queues', '/admin/queues/api/queues', `/users/${otherUserId}`]) {
      const response = await app().inject({ method: 'GET', url, headers: { cookie: owner.cookie } })
      expect([401, 403], url).toContain(response.statusCode)
    }
  })

  it('state-changing pages refuse a form without the right CSRF token and change nothing', async () => {
    const forms = routes.filter((r) => r.kind === 'page' && r.method === 'POST')
    expect(forms.map((r) => r.path).sort()).toEqual(['/account/consent', '/account/delete', '/connect', '/reconnect', '/sign-out'])
    const withCsrf = (value: string) => `groups=activity&csrf=${encodeURIComponent(value)}`
    const bad: [string, string][] = [
      ['no CSRF token', 'groups=activity'],
      ['an empty CSRF token', withCsrf('')],
      ['a wrong CSRF token', withCsrf('x'.repeat(owner.csrf.length))],
      ["another session's CSRF token", withCsrf(stranger.csrf)],
      ['the CSRF token twice', `${withCsrf(owner.csrf)}&csrf=${encodeURIComponent(owner.csrf)}`],
      ['the CSRF token with one more character', withCsrf(`${owner.csrf}x`)],
      ['a too long CSRF token', withCsrf('x'.repeat(3_000))],
    ]
    const probes: Probe[] = []
    for (const route of forms) {
      for (const [what, payload] of bad) {
        probes.push({
          route,
          what,
          request: { method: 'POST', url: route.path, headers: { cookie: owner.cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload },
          expect: statusIn(403),
        })
      }
      probes.push({
        route,
        what: 'the CSRF token in the query string',
        request: {
          method: 'POST',
          url: `${route.path}?csrf=${encodeURIComponent(owner.csrf)}`,
          headers: { cookie: owner.cookie, 'content-type': 'application/x-www-form-urlencoded' },
          payload: 'groups=activity',
        },
        expect: statusIn(403),
      })
      probes.push({
        route,
        what: 'the right CSRF token without the session',
        request: { method: 'POST', url: route.path, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: withCsrf(owner.csrf) },
        expect: statusIn(401, 403),
      })
    }
    expect(await run(probes)).toEqual([])
    const still = await app().inject({ method: 'GET', url: `/users/${owner.userId}`, headers: admin })
    expect(still.statusCode).toBe(200)
    expect(still.json()).toMatchObject({ state: 'active', dataTypes: expect.arrayContaining(['steps']) })
  })

  it('routes a session cookie can change need a method no cross-site form can send, and no CORS lets a page try', async () => {
    for (const route of routes.filter((r) => r.kind === 'api' && acceptsSession(r))) {
      expect(['GET', 'HEAD', 'PUT', 'DELETE'], label(route)).toContain(route.method)
      const preflight = await app().inject({
        method: 'OPTIONS',
        url: urlOf(route, { id: owner.userId }),
        headers: { origin: 'https://elsewhere.example', 'access-control-request-method': route.method, cookie: owner.cookie },
      })
      expect(preflight.headers['access-control-allow-origin'], label(route)).toBeUndefined()
      expect(preflight.headers['access-control-allow-credentials'], label(route)).toBeUndefined()
    }
  })

  it("Bull Board refuses a cross-site form post carrying the browser's saved credentials", async () => {
    const before = await service.queues.queue('publish').count()
    const response = await app().inject({
      method: 'POST',
      url: '/admin/queues/api/queues/publish/add',
      headers: {
        authorization: `Basic ${b64(`operator:${ADMIN}`)}`,
        origin: 'https://elsewhere.example',
        'sec-fetch-site': 'cross-site',
        'content-type': 'application/x-www-form-urlencoded',
      },
      payload: 'name=injected&data=anything',
    })
    expect(response.statusCode).toBe(403)
    expect(await service.queues.queue('publish').count()).toBe(before)
  })
})

/**
 * Path pieces that climb out of their folder, overflow a length, or trip decoding. A bare `..` or `.`
 * is folded away by inject's URL parsing, as by any client: the loopback socket test sends those raw.
 */
const ODD_SEGMENTS = [
  '..%2F..%2Fetc%2Fpasswd',
  '..%2f..%2f..%2f..%2f..%2fetc%2fpasswd',
  '%2e%2e%2f%2e%2e%2f%2e%2e%2fpackage.json',
  '..%5C..%5Cwindows%5Cwin.ini',
  '..;',
  'a'.repeat(65),
  'i'.repeat(100),
  'i'.repeat(101),
  'i'.repeat(5_000),
  '%00',
  'abcdefgh%0012345678',
  '%0d%0aset-cookie:%20planted=1',
  encodeURIComponent('ユーザー-ид-🙂'),
  encodeURIComponent('e\u0301\u200b\u202e'),
  '%F0%9F',
  '%',
  '%zz',
  '%C0%AE%C0%AE',
  '%20',
  '+',
  '%2F',
  "'%20OR%201=1--",
  '%3Cscript%3Ealert(1)%3C%2Fscript%3E',
  '%7B%7B7*7%7D%7D',
  '$%7Bjndi:ldap:x%7D',
  '__proto__',
  'constructor',
  'null',
  '-1',
  'NaN',
  '*',
]

/** Query strings no caller should send. */
const ODD_QUERIES = [
  'limit=abc',
  'limit=-1',
  'limit=0',
  'limit=1.5',
  'limit=1e3',
  'limit=',
  'limit=99999999999999999999',
  'since=yesterday',
  'until=2024-13-45T99:99:99Z',
  'stage=nope',
  'stage=fetch&stage=sync',
  'code=lower-case',
  `code=${'A'.repeat(65)}`,
  'confirm=purge&stage=nope',
  'a[b]=c',
  'a[]=1&a[]=2',
  '__proto__[polluted]=1',
  'constructor[prototype][polluted]=1',
  '__proto__=x',
  '%zz=1',
  'x=%zz',
  '=&&==',
  '&',
  '?',
  'x=%00',
  'x=%0d%0aset-cookie:%20planted=1',
  'notice=%3Cscript%3E',
  `notice=${'n'.repeat(40)}`,
  `state=${'s'.repeat(300)}`,
  'state=AAAAAAAAAAAAAAAAAAAAAAAA&code=x',
  'error=access_denied',
  `error=${'e'.repeat(300)}`,
  `code=${'c'.repeat(3_000)}`,
  'u=..%2F..&t=%00&e=-1&s=',
  `u=${'u'.repeat(65)}&t=x&e=1&s=y`,
  'u=abcdefgh12345678&t=x&e=99999999999999999999&s=y',
  `x=${'y'.repeat(20_000)}`,
  Array.from({ length: 2_000 }, (_, i) => `k${i}=v`).join('&'),
  'page=-1&jobsPerPage=abc&activeQueue=%00&status=nope',
]

const MALFORMED_JSON = [
  '{',
  '{"refreshToken":',
  '[',
  'nul',
  '"unterminated',
  '{"a":1}}',
  "{'single':'quotes'}",
  '{"a":1,}',
  '\u0000',
  '{"a":"\\ud800"}x',
  '{"__proto__":{"polluted":1}}',
  '{"constructor":{"prototype":{"polluted":1}}}',
]

const ODD_CONTENT_TYPES: [string, string][] = [
  ['text/plain', '{"dataTypes":["steps"]}'],
  ['application/xml', '<user><id>1</id></user>'],
  ['multipart/form-data; boundary=x', '--x\r\ncontent-disposition: form-data; name="a"\r\n\r\nb\r\n--x--'],
  ['application/json; charset=utf-16', '{"a":1}'],
  ['application/jsonx', '{"a":1}'],
  ['application/x-www-form-urlencoded', '{"dataTypes":["steps"]}'],
  ['image/png', '\u0089PNG'],
  ['', '{"a":1}'],
  ['garbage', '{"a":1}'],
]

const JSON_TYPES = ['string', 'integer', 'number', 'boolean', 'null', 'array', 'object'] as const
type JsonType = (typeof JSON_TYPES)[number]
const VALUE_OF: Readonly<Record<JsonType, fc.Arbitrary<unknown>>> = {
  string: fc.string({ maxLength: 30 }),
  integer: fc.integer(),
  number: fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Number.isInteger(n)),
  boolean: fc.boolean(),
  null: fc.constant(null),
  array: fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }),
  object: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
}

function typesOf(schema: Schema): Set<JsonType> {
  const alternatives = schema.anyOf ?? schema.oneOf
  if (alternatives !== undefined) return new Set(alternatives.flatMap((s) => [...typesOf(s)]))
  if (schema.type === undefined) return new Set(JSON_TYPES)
  const types = new Set([schema.type].flat() as JsonType[])
  if (types.has('number')) types.add('integer')
  return types
}

/** Values of every JSON type the schema does not allow, or undefined when it allows them all. */
function wrongValues(schema: Schema): fc.Arbitrary<unknown> | undefined {
  const wrong = JSON_TYPES.filter((t) => !typesOf(schema).has(t))
  return wrong.length === 0 ? undefined : fc.oneof(...wrong.map((t) => VALUE_OF[t]))
}

const bodySchema = (route: Route) => route.doc?.requestBody?.content['application/json']?.schema
/** Routes whose body is an uploaded file (a zip export), not JSON. */
const UPLOAD_ROUTES = new Set(['POST /users/:id/imports'])
const queryParams = (route: Route) => route.doc?.parameters?.filter((p) => p.in === 'query') ?? []
const leaksFiles = (response: LightMyRequestResponse) =>
  /root:x:0:0|"devDependencies"|\[extensions\]/.test(response.body) ? 'answered with the contents of a file outside its folder' : undefined

describe('fuzz', () => {
  it('odd path parameters get a clear 4xx, and no path leaves its folder', async () => {
    const probes: Probe[] = []
    for (const route of routes) {
      for (const param of paramsOf(route)) {
        const generated = samples(route, `param ${param}`, fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }), 16).map(encodeURIComponent)
        for (const value of [...ODD_SEGMENTS, ...generated]) {
          probes.push({
            route,
            what: `${param} = ${value.slice(0, 40)}`,
            request: { method: route.method, url: urlOf(route, { [param]: value }), headers: rightCredentials(route) },
            // Bull Board's own pages are one app whatever the path says; its API and ours refuse.
            expect: (response) =>
              leaksFiles(response) ??
              (route.kind === 'board-ui' || route.kind === 'board-api' || response.statusCode >= 400
                ? undefined
                : `answered ${response.statusCode} for ${param} = ${value.slice(0, 40)}`),
          })
        }
      }
    }
    expect(await run(probes)).toEqual([])
  })

  it('odd query strings get a clear answer, and wrong values for documented parameters a 400', async () => {
    const probes: Probe[] = []
    for (const route of routes) {
      const url = urlOf(route)
      const headers = rightCredentials(route)
      for (const query of ODD_QUERIES) {
        probes.push({ route, what: `?${query.slice(0, 40)}`, request: { method: route.method, url: `${url}?${query}`, headers } })
      }
      const generated = samples(route, 'query', fc.dictionary(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 40 }), { maxKeys: 4 }), 6)
      for (const fields of generated) {
        probes.push({ route, what: 'a generated query', request: { method: route.method, url: `${url}?${new URLSearchParams(fields).toString()}`, headers } })
      }
      for (const param of queryParams(route)) {
        for (const value of samples(route, `query ${param.name}`, fc.string({ unit: 'binary', maxLength: 40 }), 6)) {
          probes.push({
            route,
            what: `${param.name} = ${value}`,
            request: { method: route.method, url: `${url}?${new URLSearchParams({ [param.name]: value })}`, headers },
          })
        }
      }
    }
    // Parameters the API documents: a value its schema refuses is a 400 that names the parameter.
    for (const route of routes.filter((r) => r.kind === 'api' && r.method !== 'HEAD')) {
      for (const param of queryParams(route)) {
        const schema = param.schema as Schema & { enum?: unknown[]; pattern?: string; format?: string; maxLength?: number }
        const bad = [
          ...(schema.enum !== undefined ? ['not-one-of-them'] : []),
          ...(schema.pattern !== undefined ? ['%00!'] : []),
          ...(schema.format === 'date-time' ? ['yesterday', '2024-02-30T25:00:00Z'] : []),
          ...(schema.maxLength !== undefined ? ['x'.repeat(schema.maxLength + 1)] : []),
          ...(param.name === 'limit' ? ['0', '1001', '-5', '2.5', 'ten'] : []),
        ]
        for (const value of bad) {
          probes.push({
            route,
            what: `documented ${param.name} = ${value.slice(0, 20)}`,
            request: { method: route.method, url: `${urlOf(route)}?${param.name}=${value}`, headers: rightCredentials(route) },
            expect: (response) =>
              statusIn(400)(response) ?? (String(response.json().message).includes(param.name) ? undefined : `a 400 that does not name ${param.name}`),
          })
        }
      }
    }
    expect(await run(probes)).toEqual([])
  })

  it('malformed, mistyped, empty and oversized bodies get a 400, 413 or 415', async () => {
    const probes: Probe[] = []
    for (const route of routes.filter(hasBody)) {
      const url = urlOf(route)
      const headers = rightCredentials(route)
      const send = (what: string, contentType: string, payload: string, expect?: Probe['expect']) =>
        probes.push({
          route,
          what,
          request: { method: route.method, url, headers: { ...headers, 'content-type': contentType }, payload },
          ...(expect && { expect }),
        })
      const documented = bodySchema(route)
      const refused = route.kind === 'page' ? statusIn(401, 403) : statusIn(400)
      // An upload route's body is the file itself: JSON there is the wrong media type.
      const jsonRefused = UPLOAD_ROUTES.has(label(route)) ? statusIn(415) : statusIn(400)
      for (const text of MALFORMED_JSON) send(`malformed JSON ${JSON.stringify(text.slice(0, 20))}`, 'application/json', text, jsonRefused)
      send('an empty JSON body', 'application/json', '', jsonRefused)
      // A route that reads a JSON body refuses anything else; the others have nothing to read.
      const notJson = documented !== undefined && route.kind === 'api' ? statusIn(400, 415) : undefined
      for (const [type, text] of ODD_CONTENT_TYPES) send(`content type ${JSON.stringify(type)}`, type, text, notJson)
      // Over the limit: the service's 16 KiB, the pages' 4 KiB, and far over.
      // Over the limit; an upload route refuses a body that is not a zip first, whatever its size.
      const tooLarge = UPLOAD_ROUTES.has(label(route)) ? statusIn(415) : statusIn(413)
      send('a body over the limit', 'application/json', JSON.stringify({ refreshToken: 'x'.repeat(BODY_LIMIT), dataTypes: ['steps'] }), tooLarge)
      send('a 1 MiB body', 'application/json', JSON.stringify({ filler: 'x'.repeat(1024 * 1024) }), tooLarge)
      send('a text body over the limit', 'text/plain', 'x'.repeat(BODY_LIMIT + 1), tooLarge)
      if (route.kind === 'page') send('a form over the limit', 'application/x-www-form-urlencoded', `csrf=${'x'.repeat(FORM_LIMIT)}`, statusIn(413))
      probes.push({
        route,
        what: 'a Content-Length that is not the body’s',
        request: { method: route.method, url, headers: { ...headers, 'content-type': 'application/json', 'content-length': '3' }, payload: '{"a":"bcdefgh"}' },
        expect: UPLOAD_ROUTES.has(label(route)) ? statusIn(400, 413, 415) : statusIn(400, 413),
      })
      if (documented !== undefined) {
        for (const whole of ['[]', '"text"', '42', 'null', 'true']) send(`a body that is ${whole}`, 'application/json', whole, refused)
        for (const [field, schema] of Object.entries(documented.properties ?? {})) {
          const wrong = wrongValues(schema)
          if (wrong === undefined) continue
          for (const value of samples(route, `body ${field}`, wrong, 8)) {
            send(`${field} = ${JSON.stringify(value)?.slice(0, 30)}`, 'application/json', JSON.stringify({ [field]: value }), (response) =>
              route.kind === 'page'
                ? refused(response)
                : (refused(response) ?? (String(response.json().message).includes(field) ? undefined : `a 400 that does not name ${field}`)),
            )
          }
        }
      }
      for (const value of samples(route, 'body', fc.jsonValue({ maxDepth: 3 }), 10)) send('a generated JSON body', 'application/json', JSON.stringify(value))
      send('deeply nested JSON', 'application/json', `${'['.repeat(2_000)}${']'.repeat(2_000)}`)
      send('JSON after a byte order mark', 'application/json', '\ufeff{"a":1}')
      if (route.kind === 'page') {
        const forms = fc.dictionary(fc.constantFrom('groups', 'csrf', 'tz', 'all', '__proto__'), fc.string({ unit: 'binary', maxLength: 60 }), { maxKeys: 4 })
        for (const fields of samples(route, 'form', forms, 10)) {
          send('a generated form', 'application/x-www-form-urlencoded', new URLSearchParams(fields).toString(), statusIn(401, 403))
        }
      }
    }
    expect(await run(probes)).toEqual([])
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('raw requests on a loopback socket, unnormalised paths and broken HTTP included, get a 4xx', async () => {
    const address = await app().listen({ host: '127.0.0.1', port: 0 })
    const { port } = new URL(address)
    const basic = `Basic ${b64(`operator:${ADMIN}`)}`
    const requests: [string, string][] = [
      ['a raw climb out of the board’s assets', `GET /admin/queues/static/../../../../../../etc/passwd HTTP/1.1\r\nhost: x\r\nauthorization: ${basic}\r\n`],
      ['a raw climb out of the docs’ assets', 'GET /docs/static/../../../../../../etc/passwd HTTP/1.1\r\nhost: x\r\n'],
      ['an encoded climb to the package file', 'GET /docs/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/package.json HTTP/1.1\r\nhost: x\r\n'],
      ['a dot segment before a guarded path', 'GET /./admin/queues/api/queues HTTP/1.1\r\nhost: x\r\n'],
      ['a doubled slash before a guarded path', 'GET //admin/queues/api/queues HTTP/1.1\r\nhost: x\r\n'],
      ['a climb into a guarded path', 'GET /healthz/../dead-letters HTTP/1.1\r\nhost: x\r\n'],
      ['a user id of ..', `GET /users/.. HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ADMIN}\r\n`],
      ['a user id of %2e%2e', `DELETE /users/%2e%2e HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ADMIN}\r\n`],
      ['a dead letter id of ..', `GET /dead-letters/fetch/.. HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ADMIN}\r\n`],
      ['a dot asset', `GET /admin/queues/static/. HTTP/1.1\r\nhost: x\r\nauthorization: ${basic}\r\n`],
      ['an absolute URL as target', 'GET http://elsewhere.example/dead-letters HTTP/1.1\r\nhost: x\r\n'],
      ['a request line that is not HTTP', 'HELLO\r\n'],
      ['an unknown method', 'BREW /users HTTP/1.1\r\nhost: x\r\n'],
      ['a header over the size limit', `GET /healthz HTTP/1.1\r\nhost: x\r\nx-filler: ${'f'.repeat(20_000)}\r\n`],
      ['a header with a bare newline', 'GET /healthz HTTP/1.1\r\nhost: x\r\nx-a: b\nx-c: d\r\n'],
      ['two content lengths', 'POST /users HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}'],
      ['chunked and a content length', 'POST /users HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n'],
      [
        'a chunk size that is not hex',
        `POST /users HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ADMIN}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      ],
    ]
    const problems: string[] = []
    for (const [what, text] of requests) {
      tally.cases++
      const answer = await rawExchange(Number(port), text.includes('\r\n\r\n') ? text : `${text}connection: close\r\n\r\n`)
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)
      if (status >= 500) tally.serverErrors++
      if (status < 400 || status >= 500) problems.push(`${what}: answered ${status === 0 ? 'nothing' : status} ${answer.slice(0, 200)}`)
      if (/root:x:0:0|"devDependencies"/.test(answer)) problems.push(`${what}: answered with a file outside its folder`)
    }
    expect(problems).toEqual([])
  })
})

/** Writes `text` to a fresh connection and reads until the server closes it (or the answer is overdue). */
async function rawExchange(port: number, text: string): Promise<string> {
  const { connect } = await import('node:net')
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    const timer = setTimeout(() => {
      socket.destroy()
      resolve(answer)
    }, ANSWER_WITHIN_MS)
    socket.on('data', (chunk) => (answer += chunk.toString('latin1')))
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(answer)
    })
    socket.on('error', () => undefined)
    socket.write(text)
  })
}

describe('metrics', () => {
  it('reveal no user id, Google account, token, session, pseudonym or email, and carry no per-user label', async () => {
    const body = (await app().inject({ method: 'GET', url: '/metrics' })).body
    for (const secret of [owner.userId, otherUserId, owner.sessionId, stranger.sessionId, owner.csrf, ...googleIds, ...refreshTokens].filter((s) => s !== '')) {
      expect(body).not.toContain(secret)
    }
    expect(body).not.toMatch(/[\w.+-]+@[\w-]+\.[\w.-]+/)
    const labels = new Map<string, Set<string>>()
    for (const line of body.split('\n')) {
      const sample = /^(\w+)\{(.*)\} /.exec(line)
      if (sample === null) continue
      for (const [, name, value] of sample[2]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
        expect(value, `${sample[1]} ${name}`).not.toMatch(/^[0-9a-f]{32}$/)
        labels.set(name!, (labels.get(name!) ?? new Set()).add(sample[1]!))
      }
    }
    expect([...labels.keys()].filter((name) => /user|pseudonym|email|session|account|google|token|id$/i.test(name))).toEqual([])
  })
})

describe('after the fuzz', () => {
  it('the service still serves: health, users, sessions, forms and registration all work', async () => {
    expect((await app().inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
    expect((await app().inject({ method: 'GET', url: '/readyz' })).json()).toMatchObject({ status: 'ready' })
    const own = await app().inject({ method: 'GET', url: `/users/${owner.userId}`, headers: { cookie: owner.cookie } })
    expect(own.statusCode).toBe(200)
    expect(own.json()).toMatchObject({ id: owner.userId, state: 'active' })
    expect((await app().inject({ method: 'POST', url: `/users/${otherUserId}/sync`, headers: admin })).statusCode).toBe(202)
    const consent = await app().inject({
      method: 'POST',
      url: '/account/consent',
      headers: { cookie: owner.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ groups: 'activity', csrf: owner.csrf }).toString(),
    })
    expect(consent.statusCode).toBe(303)
    const entries = await app().inject({ method: 'GET', url: '/dead-letters/entries?stage=fetch&limit=10', headers: admin })
    expect(entries.statusCode).toBe(200)
    const fresh = google.addUser()
    const created = await app().inject({ method: 'POST', url: '/users', headers: admin, payload: { refreshToken: fresh.refreshToken, dataTypes: ['steps'] } })
    expect(created.statusCode).toBe(201)
    // The board's own pages still make changes; only other sites' pages may not.
    const pause = await app().inject({
      method: 'PUT',
      url: '/admin/queues/api/queues/fetch/pause',
      headers: { authorization: `Basic ${b64(`operator:${ADMIN}`)}`, 'sec-fetch-site': 'same-origin', origin: 'http://localhost:80' },
    })
    expect(pause.statusCode).toBe(200)
    expect((await app().inject({ method: 'PUT', url: '/admin/queues/api/queues/fetch/resume', headers: admin })).statusCode).toBe(200)
  })
})
