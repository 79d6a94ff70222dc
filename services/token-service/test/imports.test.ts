import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FakeGoogle } from '@fitstream/fake-google'
import type { ServiceRuntime } from '@fitstream/shared'
import { loadConfig } from '../src/config.js'
import { createTokenService } from '../src/service.js'
import { silentLogger, testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { APPLE_MORNING, takeoutEntries, writeZip } from '../../../packages/exports/test/fixtures.js'
import { ADMIN, registerUser, testEnv, waitFor } from './support.js'

const prefix = uniquePrefix('imports')
const { redis, cleanup } = testRedis(prefix)
const spoolDir = mkdtempSync(join(tmpdir(), 'fitstream-spool-'))
let google: FakeGoogle
let service: ServiceRuntime
let userId: string

const admin = { authorization: `Bearer ${ADMIN}` }
const appleZip = (xml: string) => writeZip([{ name: 'apple_health_export/export.xml', data: xml }])

beforeAll(async () => {
  google = await FakeGoogle.start()
  const config = loadConfig(testEnv(google, prefix, { IMPORT_SPOOL_DIR: spoolDir, IMPORT_MAX_UPLOAD_BYTES: String(256 * 1024) }))
  service = await createTokenService(config, silentLogger())
  userId = (await registerUser(service, google, ADMIN, ['steps', 'heart_rate', 'sleep'])).id
})

afterAll(async () => {
  await service.close()
  await google.close()
  await cleanup()
  rmSync(spoolDir, { recursive: true, force: true })
})

interface Status {
  id: string
  state: string
  code?: string
  message?: string
  records: number
  format?: string
  types?: Record<string, { released: number; unchanged: number; notConsented: boolean; records: number }>
}

async function upload(zip: Buffer): Promise<Status> {
  const response = await service.server.inject({
    method: 'POST',
    url: `/users/${userId}/imports`,
    headers: { ...admin, 'content-type': 'application/zip' },
    payload: zip,
  })
  expect(response.statusCode).toBe(202)
  const { id } = response.json() as Status
  let status: Status | undefined
  await waitFor(async () => {
    status = (await service.server.inject({ method: 'GET', url: `/users/${userId}/imports/${id}`, headers: admin })).json() as Status
    return status.state === 'done' || status.state === 'failed'
  })
  return status!
}

async function anonymizeJobs() {
  const jobs = await service.queues.queue('anonymize').getJobs(['waiting', 'delayed', 'prioritized'])
  return jobs.filter((job) => job.data.syncId.startsWith('import-'))
}

describe('POST /users/:id/imports', () => {
  it('imports an Apple Health export: the consented types go to the anonymiser, nothing identifying with them, and the upload is gone', async () => {
    const status = await upload(appleZip(APPLE_MORNING))
    expect(status).toMatchObject({ state: 'done', format: 'apple-health', records: 12 })
    expect(status.types?.steps).toMatchObject({ records: 2, released: 2, unchanged: 0, notConsented: false })
    expect(status.types?.calories).toMatchObject({ released: 0, notConsented: true })
    const jobs = await anonymizeJobs()
    expect(jobs).toHaveLength(1)
    const samples = jobs[0]!.data.samples
    expect(samples.map((s) => `${s.type}@${new Date(s.startMs).toISOString()}#${s.revision}`)).toEqual([
      'sleep@2026-11-30T00:00:00.000Z#0',
      'sleep@2026-11-30T01:00:00.000Z#0',
      'steps@2026-11-30T06:00:00.000Z#0',
      'heart_rate@2026-11-30T06:00:00.000Z#0',
      'steps@2026-11-30T07:00:00.000Z#0',
    ])
    expect(JSON.stringify(jobs[0]!.data)).not.toMatch(/Alice|Watch|HKDevice|serial|export|origin/i)
    expect(jobs[0]!.id).not.toContain(userId)
    expect(readdirSync(spoolDir)).toEqual([])
  })

  it('releases nothing new when the same file comes again, and only the changed hour when it changed', async () => {
    const before = (await anonymizeJobs()).length
    const again = await upload(appleZip(APPLE_MORNING))
    expect(again.types?.steps).toMatchObject({ released: 0, unchanged: 2 })
    expect(await anonymizeJobs()).toHaveLength(before)

    const changed = await upload(appleZip(APPLE_MORNING.replace('value="500"', 'value="600"')))
    expect(changed.types?.steps).toMatchObject({ released: 1, unchanged: 1 })
    const jobs = await anonymizeJobs()
    expect(jobs).toHaveLength(before + 1)
    const newest = jobs.find((job) => job.data.syncId === `import-${changed.id}`)!
    expect(newest.data.samples).toEqual([
      { type: 'steps', startMs: Date.UTC(2026, 10, 30, 6), endMs: Date.UTC(2026, 10, 30, 7), values: { count: 750 }, unit: 'steps', revision: 1 },
    ])
  })

  it('reports a refused export with its code and hands nothing on', async () => {
    const before = (await anonymizeJobs()).length
    const status = await upload(Buffer.from('this is not a zip at all'))
    expect(status).toMatchObject({ state: 'failed', code: 'FST_ERR_IMPORT_NOT_ZIP' })
    expect(status.message).toMatch(/not a zip archive/)
    const bomb = await upload(appleZip(APPLE_MORNING.replace('</HealthData>', '<x>&lol;</x></HealthData>')))
    expect(bomb).toMatchObject({ state: 'failed', code: 'FST_ERR_IMPORT_XML_ENTITY' })
    expect(await anonymizeJobs()).toHaveLength(before)
    expect(readdirSync(spoolDir)).toEqual([])
  })

  it('refuses an upload over IMPORT_MAX_UPLOAD_BYTES with 413', async () => {
    const response = await service.server.inject({
      method: 'POST',
      url: `/users/${userId}/imports`,
      headers: { ...admin, 'content-type': 'application/zip' },
      payload: Buffer.alloc(300 * 1024),
    })
    expect(response.statusCode).toBe(413)
    expect(response.json()).toMatchObject({ code: 'FST_ERR_IMPORT_TOO_LARGE' })
  })

  it('wants a zip body and the person or an operator', async () => {
    const wrongType = await service.server.inject({
      method: 'POST',
      url: `/users/${userId}/imports`,
      headers: { ...admin, 'content-type': 'text/plain' },
      payload: 'x',
    })
    expect(wrongType.statusCode).toBe(415)
    const anonymous = await service.server.inject({
      method: 'POST',
      url: `/users/${userId}/imports`,
      headers: { 'content-type': 'application/zip' },
      payload: 'x',
    })
    expect(anonymous.statusCode).toBe(401)
    const unknown = await service.server.inject({ method: 'GET', url: `/users/${userId}/imports/AAAAAAAAAAAAAAAAAAAAAA`, headers: admin })
    expect(unknown.statusCode).toBe(404)
  })

  it('drops an upload whose client goes away half way, refuses a second one meanwhile, and keeps serving', async () => {
    await service.server.listen({ host: '127.0.0.1', port: 0 })
    const { port } = service.server.server.address() as { port: number }
    const socket = connect(port, '127.0.0.1')
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.write(
      `POST /users/${userId}/imports HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${ADMIN}\r\ncontent-type: application/zip\r\ncontent-length: 100000\r\n\r\n`,
    )
    socket.write(appleZip(APPLE_MORNING).subarray(0, 1000))
    const failed = async () => {
      const keys = await redis.keys(`${prefix}:import:*`)
      const states = await Promise.all(keys.map((key) => redis.hmget(key, 'state', 'code')))
      return states.some(([state, code]) => state === 'failed' && code === 'FST_ERR_IMPORT_ABORTED')
    }
    expect(await failed()).toBe(false)
    await new Promise((resolve) => setTimeout(resolve, 100))
    // One export per person at a time: a second upload while the first streams is refused before it is read.
    const second = await service.server.inject({
      method: 'POST',
      url: `/users/${userId}/imports`,
      headers: { ...admin, 'content-type': 'application/zip' },
      payload: appleZip(APPLE_MORNING),
    })
    expect(second.statusCode).toBe(409)
    expect(second.json()).toMatchObject({ code: 'FST_ERR_IMPORT_BUSY' })
    socket.destroy()
    await waitFor(failed)
    expect(readdirSync(spoolDir)).toEqual([])
    expect((await upload(appleZip(APPLE_MORNING))).state).toBe('done')
  })

  it('imports a Google Takeout archive with localised folders', async () => {
    const status = await upload(writeZip(takeoutEntries()))
    expect(status).toMatchObject({ state: 'done', format: 'google-takeout', records: 5 })
    expect(status.types?.steps).toMatchObject({ records: 2, released: 2 })
    expect(status.types?.heart_rate).toMatchObject({ records: 2, released: 1 })
    const job = (await anonymizeJobs()).find((j) => j.data.syncId === `import-${status.id}`)!
    expect(job.data.samples.filter((s) => s.type === 'steps').map((s) => s.values.count)).toEqual([450, 50])
  })

  it('forgets what the person imported when they are erased', async () => {
    expect(await redis.hlen(`${prefix}:import-ledger:${userId}`)).toBeGreaterThan(0)
    const erased = await service.server.inject({ method: 'DELETE', url: `/users/${userId}`, headers: admin })
    expect(erased.statusCode).toBe(200)
    expect(await redis.exists(`${prefix}:import-ledger:${userId}`)).toBe(0)
  })
})
