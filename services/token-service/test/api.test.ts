import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Job } from 'bullmq'
import { FakeGoogle } from '@fitstream/fake-google'
import { COHORT_ERASURE_QUEUE, Keyring, USER_FIELDS, userIndexKey, userKey, type DeadLetter, type ServiceRuntime, type StageData } from '@fitstream/shared'
import { loadConfig } from '../src/config.js'
import { createTokenService } from '../src/service.js'
import { silentLogger, testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { ADMIN, INTERNAL, testEnv } from './support.js'

const prefix = uniquePrefix('token-service')
const { redis, cleanup } = testRedis(prefix)
let google: FakeGoogle
let service: ServiceRuntime

const admin = { authorization: `Bearer ${ADMIN}` }

beforeAll(async () => {
  google = await FakeGoogle.start()
  const config = loadConfig(testEnv(google, prefix, { FETCH_CHUNK_HOURS: '24' }))
  service = await createTokenService(config, silentLogger())
})

afterAll(async () => {
  await service.close()
  await google.close()
  await cleanup()
})

async function register(dataTypes: string[] = ['steps', 'heart_rate']) {
  const user = google.addUser()
  const response = await service.server.inject({ method: 'POST', url: '/users', headers: admin, payload: { refreshToken: user.refreshToken, dataTypes } })
  return { google: user, response, id: (response.json() as { id: string }).id }
}

describe('admin auth', () => {
  it.each([
    ['POST', '/users'],
    ['GET', '/users'],
    ['GET', '/users/abcdefgh12345678'],
    ['DELETE', '/users/abcdefgh12345678'],
    ['POST', '/users/abcdefgh12345678/sync'],
  ])('%s %s needs the admin token', async (method, url) => {
    const response = await service.server.inject({ method: method as 'GET', url, headers: { authorization: 'Bearer wrong' } })
    expect(response.statusCode).toBe(401)
    expect(response.json()).toEqual({ error: 'Unauthorized', message: 'a valid bearer token is required' })
  })

  it('guards Bull Board and asks the browser for credentials; the admin token opens it', async () => {
    const denied = await service.server.inject({ method: 'GET', url: '/admin/queues' })
    expect(denied.statusCode).toBe(401)
    expect(denied.headers['www-authenticate']).toMatch(/^Basic realm="FitStream admin"/)
    const basic = Buffer.from(`operator:${ADMIN}`).toString('base64')
    const page = await service.server.inject({ method: 'GET', url: '/admin/queues', headers: { authorization: `Basic ${basic}` } })
    expect(page.statusCode).toBe(200)
    expect(page.headers['content-type']).toMatch(/text\/html/)
    const api = await service.server.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: admin })
    const names = (api.json() as { queues: { name: string }[] }).queues.map((q) => q.name).sort()
    expect(names).toEqual(['anonymize', 'anonymize-dlq', 'fetch', 'fetch-dlq', 'publish', 'publish-dlq', 'sync', 'sync-dlq'])
  })

  it('keeps the internal refresh route for internal callers only', async () => {
    const response = await service.server.inject({ method: 'POST', url: '/internal/users/abcdefgh12345678/access-token/refresh', headers: admin })
    expect(response.statusCode).toBe(401)
  })
})

describe('POST /users', () => {
  it.each([
    [{ dataTypes: ['steps'] }, /must have required property 'refreshToken'/],
    [{ refreshToken: 'x', dataTypes: [] }, /dataTypes must NOT have fewer than 1 items/],
    [{ refreshToken: 'x', dataTypes: ['teleportation'] }, /must be equal to one of the allowed values/],
    [{ refreshToken: 'x', dataTypes: ['steps'], email: 'a@b.c' }, /must NOT have additional properties/],
    [{ refreshToken: 'x', dataTypes: ['steps'], individualTypes: ['teleportation'] }, /must be equal to one of the allowed values/],
    [{ refreshToken: 'x', dataTypes: ['steps'], timeZone: 'Mars/Olympus_Mons' }, /timeZone must be an IANA time zone/],
  ])('rejects %j with a clear 400', async (payload, message) => {
    const response = await service.server.inject({ method: 'POST', url: '/users', headers: admin, payload })
    expect(response.statusCode).toBe(400)
    expect(response.json().message).toMatch(message)
  })

  it('rejects malformed JSON and oversized bodies', async () => {
    const bad = await service.server.inject({
      method: 'POST',
      url: '/users',
      headers: { ...admin, 'content-type': 'application/json' },
      payload: '{"refreshToken":',
    })
    expect(bad.statusCode).toBe(400)
    const huge = await service.server.inject({
      method: 'POST',
      url: '/users',
      headers: admin,
      payload: { refreshToken: 'x'.repeat(40_000), dataTypes: ['steps'] },
    })
    expect(huge.statusCode).toBe(413)
  })

  it('refuses a refresh token Google does not accept, and keeps nothing', async () => {
    const before = await redis.keys(`${prefix}:user:*`)
    const response = await service.server.inject({
      method: 'POST',
      url: '/users',
      headers: admin,
      payload: { refreshToken: '1//not-a-real-token', dataTypes: ['steps'] },
    })
    expect(response.statusCode).toBe(400)
    expect(response.json().message).toMatch(/refused by Google.*invalid_grant/)
    expect(response.body).not.toContain('1//not-a-real-token')
    expect(await redis.keys(`${prefix}:user:*`)).toEqual(before)
  })

  it('refuses data the API a refresh token is for does not have, naming it, and keeps nothing', async () => {
    const before = await redis.keys(`${prefix}:user:*`)
    const health = google.addUser({ scopes: ['https://www.googleapis.com/auth/googlehealth.activity_and_fitness.readonly'] })
    const response = await service.server.inject({
      method: 'POST',
      url: '/users',
      headers: admin,
      payload: { refreshToken: health.refreshToken, dataTypes: ['steps', 'blood_pressure', 'speed'] },
    })
    expect(response.statusCode).toBe(400)
    expect(response.json()).toEqual({
      error: 'Bad Request',
      code: 'FST_ERR_CONSENT_UNAVAILABLE',
      message: 'blood_pressure, speed cannot be read from the Google Health API',
    })
    expect((await redis.keys(`${prefix}:user:*`)).sort()).toEqual(before.sort())
    // The same token for what the Health API has is taken.
    const taken = await service.server.inject({
      method: 'POST',
      url: '/users',
      headers: admin,
      payload: { refreshToken: health.refreshToken, dataTypes: ['steps'] },
    })
    expect(taken.json()).toMatchObject({ dataApi: 'health', dataTypes: ['steps'] })
  })

  it('registers a user: encrypted tokens at rest, a schedule, a first sync, and no token in any answer', async () => {
    const { response, id, google: user } = await register()
    expect(response.statusCode).toBe(201)
    expect(response.json()).toMatchObject({ id, state: 'active', dataTypes: ['steps', 'heart_rate'], lastError: null })
    expect(response.json().nextSyncAt).not.toBeNull()
    expect(response.body).not.toContain(user.refreshToken)

    const stored = await redis.hgetall(userKey(prefix, id))
    expect(JSON.stringify(stored)).not.toContain(user.refreshToken)
    const tokens = await redis.hmgetBuffer(userKey(prefix, id), USER_FIELDS.refreshToken, USER_FIELDS.accessToken)
    expect(tokens.map((token) => Keyring.keyIdOf(token!))).toEqual(['r1', 'a1'])
    expect(tokens.some((token) => token!.includes(user.refreshToken))).toBe(false)

    const syncJobs = await service.queues.queue('sync').getJobs(['waiting', 'delayed'])
    expect(syncJobs.map((j) => j.data)).toContainEqual({ userId: id, reason: 'onboarding' })
    expect(JSON.stringify(syncJobs.map((j) => j.data))).not.toContain(user.refreshToken)

    const read = await service.server.inject({ method: 'GET', url: `/users/${id}`, headers: admin })
    expect(read.statusCode).toBe(200)
    expect(read.json()).toMatchObject({ id, state: 'active' })
    expect(read.body).not.toContain('v1.')
  })

  it('answers 404 for an unknown user and 400 for a malformed id', async () => {
    expect((await service.server.inject({ method: 'GET', url: '/users/abcdefgh12345678', headers: admin })).statusCode).toBe(404)
    expect((await service.server.inject({ method: 'GET', url: '/users/..%2F..%2Fetc', headers: admin })).statusCode).toBe(400)
  })
})

describe('GET /users', () => {
  it('walks every user a page at a time, filters by API and state, and shows no token', async () => {
    const ours = await Promise.all(Array.from({ length: 5 }, () => register(['steps'])))
    // As UserRepository.setState does: the state, and the index of users who must reconnect.
    await redis
      .multi()
      .hset(userKey(prefix, ours[0]!.id), USER_FIELDS.state, 'reauth_required')
      .sadd(`${userIndexKey(prefix)}:reauth`, ours[0]!.id)
      .exec()
    const stored = await Promise.all(
      ours.flatMap((o) => [USER_FIELDS.refreshToken, USER_FIELDS.accessToken].map((field) => redis.hget(userKey(prefix, o.id), field))),
    )
    expect(stored.filter((ciphertext) => ciphertext !== null).length).toBeGreaterThanOrEqual(5)
    const walk = async (query: string) => {
      const seen: { id: string; state: string; dataApi: string; links: { move: string | null } }[] = []
      let cursor: string | null = '0'
      for (let pages = 0; cursor !== null; pages++) {
        expect(pages).toBeLessThan(100)
        const response = await service.server.inject({ method: 'GET', url: `/users?limit=2&cursor=${cursor}${query}`, headers: admin })
        expect(response.statusCode, response.body).toBe(200)
        for (const ciphertext of stored) if (ciphertext !== null) expect(response.body).not.toContain(ciphertext)
        const body = response.json() as { users: typeof seen; nextCursor: string | null }
        for (const user of body.users) expect(Object.keys(user)).not.toEqual(expect.arrayContaining([expect.stringMatching(/token/i)]))
        seen.push(...body.users)
        cursor = body.nextCursor
      }
      return seen.filter((u) => ours.some((o) => o.id === u.id))
    }
    const all = await walk('')
    expect(all.map((u) => u.id).sort()).toEqual(ours.map((o) => o.id).sort())
    // A deployment on Fit has nobody to move.
    expect(all.every((u) => u.dataApi === 'fit' && u.links.move === null)).toBe(true)
    expect((await walk('&dataApi=fit')).length).toBe(5)
    expect(await walk('&dataApi=health')).toEqual([])
    expect((await walk('&state=reauth_required')).map((u) => u.id)).toEqual([ours[0]!.id])
    // The other tests count the users who must reconnect.
    await redis
      .multi()
      .hset(userKey(prefix, ours[0]!.id), USER_FIELDS.state, 'active')
      .srem(`${userIndexKey(prefix)}:reauth`, ours[0]!.id)
      .exec()
  })

  it.each(['cursor=abc', 'cursor=18446744073709551616', 'limit=0', 'limit=5000', 'dataApi=fitbit', 'state=gone', 'email=a@b.c'])(
    'rejects ?%s with a clear 400',
    async (query) => {
      const response = await service.server.inject({ method: 'GET', url: `/users?${query}`, headers: admin })
      expect(response.statusCode).toBe(400)
      expect(response.json().message).toMatch(/^querystring/)
    },
  )
})

describe('PUT /internal/users/:id/time-zone', () => {
  const internal = { authorization: `Bearer ${INTERNAL}` }
  const put = (id: string, payload: unknown, headers = internal) =>
    service.server.inject({ method: 'PUT', url: `/internal/users/${id}/time-zone`, headers, payload: payload as Record<string, unknown> })

  it('records the zone a fetcher found the person in, which their record (and their next sync) then has', async () => {
    const user = google.addUser()
    const created = await service.server.inject({
      method: 'POST',
      url: '/users',
      headers: admin,
      payload: { refreshToken: user.refreshToken, dataTypes: ['steps'], timeZone: 'Europe/Berlin' },
    })
    const id = (created.json() as { id: string }).id
    expect(created.json().timeZone).toBe('Europe/Berlin')
    expect((await put(id, { timeZone: 'America/New_York' })).statusCode).toBe(204)
    expect((await service.server.inject({ method: 'GET', url: `/users/${id}`, headers: admin })).json().timeZone).toBe('America/New_York')
  })

  it('refuses a zone that is not an IANA zone, a missing one, a user that is gone, and callers without the internal token', async () => {
    const { id } = await register(['steps'])
    const invalid = await put(id, { timeZone: 'Mars/Olympus_Mons' })
    expect(invalid.statusCode).toBe(400)
    expect(invalid.json()).toMatchObject({ code: 'FST_ERR_VALIDATION', message: 'body/timeZone must be an IANA time zone such as Asia/Kolkata' })
    expect((await put(id, {})).statusCode).toBe(400)
    expect((await service.server.inject({ method: 'GET', url: `/users/${id}`, headers: admin })).json().timeZone).toBe('UTC')
    expect((await put('abcdefgh12345678', { timeZone: 'Asia/Tokyo' })).statusCode).toBe(404)
    expect(await redis.exists(userKey(prefix, 'abcdefgh12345678'))).toBe(0)
    expect((await put(id, { timeZone: 'Asia/Tokyo' }, admin)).statusCode).toBe(401)
  })
})

describe('sync', () => {
  beforeEach(async () => {
    await service.queues.queue('sync').drain(true)
    await service.queues.queue('fetch').obliterate({ force: true })
  })

  it('plans fetch windows for the backfill, with no token in the fetch jobs', async () => {
    const { id, google: user } = await register(['steps'])
    service.start()
    // Backfill chunks are prioritised below regular syncs, so they wait in BullMQ's prioritized set.
    await waitFor(async () => {
      const counts = await service.queues.queue('fetch').getJobCounts('waiting', 'prioritized')
      return (counts.waiting ?? 0) + (counts.prioritized ?? 0) >= 2
    })
    const jobs = (await service.queues.queue('fetch').getJobs(['waiting', 'prioritized'])) as Job<StageData<'fetch'>>[]
    const mine = jobs.filter((j) => j.data.userId === id)
    // Two days of history in 24-hour chunks (three when now is not on a bucket edge).
    expect(mine.length).toBeGreaterThanOrEqual(2)
    for (const job of mine) {
      expect(job.data.dataTypes).toEqual(['steps'])
      expect(job.data.window.endMs - job.data.window.startMs).toBeLessThanOrEqual(24 * 3_600_000)
      // Derived from the user and window (a retried sync fetches nothing twice), yet naming nobody.
      expect(job.id).toMatch(/^fetch-[\w-]{32}$/)
      expect(job.id).not.toContain(id)
    }
    expect(new Set(mine.map((j) => j.id)).size).toBe(mine.length)
    expect(JSON.stringify(mine.map((j) => j.data))).not.toContain(user.refreshToken)
    const windows = mine.map((j) => j.data.window).sort((a, b) => a.startMs - b.startMs)
    for (let i = 1; i < windows.length; i++) expect(windows[i]!.startMs).toBe(windows[i - 1]!.endMs)
  })

  it('hands each fetch job the types the person sells as individual records, among those they still sell', async () => {
    const user = google.addUser()
    const payload = { refreshToken: user.refreshToken, dataTypes: ['steps', 'heart_rate'], individualTypes: ['steps', 'calories'] }
    const created = await service.server.inject({ method: 'POST', url: '/users', headers: admin, payload })
    expect(created.statusCode).toBe(201)
    const id = (created.json() as { id: string }).id
    // Calories are not sold at all, so not individually either.
    expect(created.json().individualTypes).toEqual(['steps'])
    service.start()
    const mine = async () =>
      ((await service.queues.queue('fetch').getJobs(['waiting', 'prioritized'])) as Job<StageData<'fetch'>>[]).filter((j) => j.data.userId === id)
    await waitFor(async () => (await mine()).length > 0)
    for (const job of await mine()) expect(job.data.individualTypes).toEqual(['steps'])

    const changed = await service.server.inject({
      method: 'PUT',
      url: `/users/${id}/consent`,
      headers: admin,
      payload: { dataTypes: ['steps', 'heart_rate'], individualTypes: ['heart_rate'] },
    })
    expect(changed.statusCode).toBe(200)
    expect(changed.json().individualTypes).toEqual(['heart_rate'])
    // Consent changed without naming them keeps the opt-in.
    const again = await service.server.inject({ method: 'PUT', url: `/users/${id}/consent`, headers: admin, payload: { dataTypes: ['heart_rate'] } })
    expect(again.json().individualTypes).toEqual(['heart_rate'])
  })

  it('pauses a user whose refresh token was revoked: reauth_required, no schedule, nothing dead-lettered', async () => {
    const { id, google: user } = await register(['steps'])
    google.revokeRefreshToken(user.refreshToken)
    google.expireAccessTokens(user.googleId)
    // Force the next sync to refresh: the stored access token is still within its lifetime.
    await redis.hset(userKey(prefix, id), USER_FIELDS.accessTokenExpiresAt, '0')
    const sync = await service.server.inject({ method: 'POST', url: `/users/${id}/sync`, headers: admin })
    expect(sync.statusCode).toBe(202)
    service.start()
    await waitFor(async () => (await service.server.inject({ method: 'GET', url: `/users/${id}`, headers: admin })).json().state === 'reauth_required')
    const read = (await service.server.inject({ method: 'GET', url: `/users/${id}`, headers: admin })).json()
    expect(read).toMatchObject({ state: 'reauth_required', nextSyncAt: null })
    expect(read.lastError).toMatch(/invalid_grant/)
    const dead = (await service.queues.deadLetterQueue('sync').getJobs(['waiting'])) as Job<DeadLetter>[]
    expect(dead.filter((d) => JSON.stringify(d.data.payload).includes(id))).toEqual([])
    const again = await service.server.inject({ method: 'POST', url: `/users/${id}/sync`, headers: admin })
    expect(again.statusCode).toBe(409)
    // Operators see it on /metrics: the refused refresh, and one more user who must reconnect.
    const metrics = (await service.server.inject({ method: 'GET', url: '/metrics' })).body
    expect(metrics).toMatch(/fitstream_token_refreshes_total\{outcome="reauth_required"[^}]*\} [1-9]/)
    expect(metrics).toMatch(/fitstream_users\{state="reauth_required"[^}]*\} 1\b/)
    await service.server.inject({ method: 'DELETE', url: `/users/${id}`, headers: admin })
    expect((await service.server.inject({ method: 'GET', url: '/metrics' })).body).toMatch(/fitstream_users\{state="reauth_required"[^}]*\} 0\b/)
  })
})

describe('DELETE /users/:id', () => {
  it('erases the user, their tokens and schedule, and says what was erased', async () => {
    const { id } = await register(['steps'])
    const response = await service.server.inject({ method: 'DELETE', url: `/users/${id}`, headers: admin })
    expect(response.statusCode).toBe(200)
    expect(response.json()).toMatchObject({ id, erased: { account: true, tokens: true, schedule: true } })
    expect(response.json().note).toMatch(/cannot be recalled/)
    expect(response.json().byOwner).toEqual([
      { owner: 'token-service', outcome: 'deleted', detail: expect.stringMatching(/account, Google tokens/) },
      { owner: 'anonymizer', outcome: 'queued_for_removal', detail: expect.stringMatching(/cohort averages not yet published are queued for removal/) },
      { owner: 'google', outcome: 'revoked', detail: expect.stringMatching(/revoked at Google/) },
      { owner: 'published', outcome: 'cannot_be_recalled', detail: expect.stringMatching(/Pseudonymised records.*noisy averages over many people/) },
    ])
    // The anonymiser is asked under an id that does not name the person, and the job leaves no trace once done.
    const [erasure] = await service.queues.queueNamed(COHORT_ERASURE_QUEUE).getJobs(['waiting'])
    expect(erasure?.data).toEqual({ userId: id })
    expect(erasure?.id).not.toContain(id)
    expect(erasure?.opts).toMatchObject({ removeOnComplete: true, removeOnFail: true })
    await erasure?.remove()
    expect(await redis.exists(userKey(prefix, id))).toBe(0)
    expect(await redis.zscore(`${prefix}:schedule:sync`, id)).toBeNull()
    expect((await service.server.inject({ method: 'GET', url: `/users/${id}`, headers: admin })).statusCode).toBe(404)
    expect((await service.server.inject({ method: 'DELETE', url: `/users/${id}`, headers: admin })).statusCode).toBe(404)
  })
})

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
