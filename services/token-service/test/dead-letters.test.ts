import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FakeGoogle } from '@fitstream/fake-google'
import type { DeadLetter, ServiceRuntime, Stage } from '@fitstream/shared'
import { loadConfig } from '../src/config.js'
import { createTokenService } from '../src/service.js'
import { silentLogger, testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { ADMIN, testEnv } from './support.js'

const prefix = uniquePrefix('dead-letters')
const { cleanup } = testRedis(prefix)
let google: FakeGoogle
let service: ServiceRuntime
const admin = { authorization: `Bearer ${ADMIN}` }
let counter = 0

beforeAll(async () => {
  google = await FakeGoogle.start()
  service = await createTokenService(loadConfig(testEnv(google, prefix)), silentLogger())
})

afterAll(async () => {
  await service.close()
  await google.close()
  await cleanup()
})

const window = { startMs: Date.UTC(2026, 10, 20), endMs: Date.UTC(2026, 10, 21) }

async function deadLetter(stage: Stage, code: string, payload: Record<string, unknown>, failedAt = new Date().toISOString()): Promise<string> {
  const id = `dl-${++counter}`
  const letter: DeadLetter = {
    stage,
    jobId: `job-${counter}`,
    jobName: stage,
    payload,
    error: { code, name: 'UpstreamError', message: `${code} happened` },
    permanent: false,
    attemptsMade: 6,
    maxAttempts: 6,
    createdAt: new Date(Date.parse(failedAt) - 60_000).toISOString(),
    firstAttemptAt: null,
    failedAt,
  }
  await service.queues.addDeadLetter(stage, letter, id)
  return id
}

const fetchPayload = (userId: string) => ({ syncId: 'sync-1', userId, dataTypes: ['steps'], window, bucketMs: 3_600_000 })
const rawPayload = {
  syncId: 'sync-2',
  userId: 'user-with-raw-data-01',
  window,
  samples: [
    { type: 'heart_rate', startMs: window.startMs, endMs: window.startMs + 3_600_000, values: { avg: 71, max: 90, min: 60 }, unit: 'bpm', revision: 0 },
  ],
}

describe('dead letters API', () => {
  it('needs the admin token', async () => {
    expect((await service.server.inject({ method: 'GET', url: '/dead-letters' })).statusCode).toBe(401)
    expect((await service.server.inject({ method: 'POST', url: '/dead-letters/replay', payload: { all: true } })).statusCode).toBe(401)
  })

  it('lists each stage with counts by error code', async () => {
    await deadLetter('fetch', 'FST_ERR_GOOGLE_UNAVAILABLE', fetchPayload('user-aaaaaaaa01'))
    await deadLetter('fetch', 'FST_ERR_GOOGLE_UNAVAILABLE', fetchPayload('user-aaaaaaaa02'))
    await deadLetter('fetch', 'FST_ERR_GOOGLE_REJECTED', fetchPayload('user-aaaaaaaa03'))
    await deadLetter('anonymize', 'FST_ERR_INVALID_PAYLOAD', rawPayload)
    const response = await service.server.inject({ method: 'GET', url: '/dead-letters', headers: admin })
    const stages = (response.json() as { stages: { stage: string; count: number; codes: unknown[] }[] }).stages
    expect(stages.find((s) => s.stage === 'fetch')).toMatchObject({
      count: 3,
      codes: [
        { code: 'FST_ERR_GOOGLE_UNAVAILABLE', count: 2 },
        { code: 'FST_ERR_GOOGLE_REJECTED', count: 1 },
      ],
    })
    expect(stages.find((s) => s.stage === 'anonymize')).toMatchObject({ count: 1 })
    expect(stages.find((s) => s.stage === 'publish')).toMatchObject({ count: 0, codes: [] })
  })

  it('shows letters with raw data hidden, in the API and in Bull Board', async () => {
    const list = await service.server.inject({ method: 'GET', url: '/dead-letters/entries?stage=anonymize', headers: admin })
    const [entry] = (list.json() as { entries: { id: string; payload: { samples: unknown; userId: string }; error: unknown }[] }).entries
    expect(entry!.payload.samples).toBe('[1 raw samples hidden]')
    expect(entry!.payload.userId).toBe('user-with-raw-data-01')
    expect(list.body).not.toContain('"avg"')

    const board = await service.server.inject({
      method: 'GET',
      url: `/admin/queues/api/queues?activeQueue=anonymize-dlq&status=waiting&page=1`,
      headers: admin,
    })
    expect(board.statusCode).toBe(200)
    expect(board.body).toContain('raw samples hidden')
    expect(board.body).not.toContain('"avg"')
  })

  it('filters by code and time', async () => {
    await deadLetter('fetch', 'FST_ERR_GOOGLE_MALFORMED', fetchPayload('user-aaaaaaaa04'), '2026-01-01T00:00:00.000Z')
    const old = await service.server.inject({ method: 'GET', url: '/dead-letters/entries?until=2026-02-01T00:00:00Z', headers: admin })
    expect((old.json() as { entries: { error: { code: string } }[] }).entries.map((e) => e.error.code)).toEqual(['FST_ERR_GOOGLE_MALFORMED'])
    const byCode = await service.server.inject({ method: 'GET', url: '/dead-letters/entries?code=FST_ERR_GOOGLE_UNAVAILABLE', headers: admin })
    expect((byCode.json() as { total: number }).total).toBe(2)
    expect((await service.server.inject({ method: 'GET', url: '/dead-letters/entries?stage=nope', headers: admin })).statusCode).toBe(400)
  })

  it('replays one letter to its stage once, keeping its history, even when asked twice at once', async () => {
    const id = await deadLetter('fetch', 'FST_ERR_GOOGLE_UNAVAILABLE', fetchPayload('user-replay-0001'))
    const [first, second] = await Promise.all([
      service.server.inject({ method: 'POST', url: `/dead-letters/fetch/${id}/replay`, headers: admin }),
      service.server.inject({ method: 'POST', url: `/dead-letters/fetch/${id}/replay`, headers: admin }),
    ])
    const results = [first, second].filter((r) => r.statusCode === 200).map((r) => r.json() as { jobId: string })
    expect(results.length).toBeGreaterThanOrEqual(1)
    const jobs = (await service.queues.queue('fetch').getJobs(['waiting'])).filter((j) => j.data.userId === 'user-replay-0001')
    expect(jobs).toHaveLength(1)
    expect(jobs[0]!.id).toBe(results[0]!.jobId)
    expect(jobs[0]!.data).toEqual(fetchPayload('user-replay-0001'))
    expect(jobs[0]!.opts.attempts).toBeGreaterThan(1)
    const { logs } = await service.queues.queue('fetch').getJobLogs(jobs[0]!.id!)
    expect(logs.join('\n')).toMatch(/replayed from fetch-dlq entry .*failed .* after 6\/6 attempts: FST_ERR_GOOGLE_UNAVAILABLE/)
    expect((await service.server.inject({ method: 'GET', url: `/dead-letters/fetch/${id}`, headers: admin })).statusCode).toBe(404)
    expect((await service.server.inject({ method: 'POST', url: `/dead-letters/fetch/${id}/replay`, headers: admin })).statusCode).toBe(404)
  })

  it('replays by filter, and refuses an empty filter without all: true', async () => {
    expect((await service.server.inject({ method: 'POST', url: '/dead-letters/replay', headers: admin, payload: {} })).statusCode).toBe(400)
    const response = await service.server.inject({
      method: 'POST',
      url: '/dead-letters/replay',
      headers: admin,
      payload: { stage: 'fetch', code: 'FST_ERR_GOOGLE_UNAVAILABLE' },
    })
    expect(response.json()).toMatchObject({ replayed: 2, alreadyReplayed: 0 })
    const remaining = (await service.server.inject({ method: 'GET', url: '/dead-letters/entries?stage=fetch', headers: admin })).json() as {
      entries: { error: { code: string } }[]
    }
    expect(remaining.entries.map((e) => e.error.code).sort()).toEqual(['FST_ERR_GOOGLE_MALFORMED', 'FST_ERR_GOOGLE_REJECTED'])
  })

  it('purges only with an explicit confirmation', async () => {
    const dry = await service.server.inject({ method: 'DELETE', url: '/dead-letters?stage=anonymize', headers: admin })
    expect(dry.statusCode).toBe(409)
    expect(dry.json()).toMatchObject({ wouldPurge: 1 })
    const done = await service.server.inject({ method: 'DELETE', url: '/dead-letters?stage=anonymize&confirm=purge', headers: admin })
    expect(done.json()).toEqual({ purged: 1 })
    expect(await service.queues.deadLetterQueue('anonymize').getJobCounts('waiting')).toEqual({ waiting: 0 })
  })
})
