import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  StageQueues,
  createMetrics,
  readPrivacyReport,
  type CohortRecord,
  type FitnessSample,
  type PublishJobData,
  type ReleasableRecord,
} from '@fitstream/shared'
import { decideRelease, fileSource, importArchive, ledgerKey, type LedgerEntry } from '../packages/exports/src/index.js'
import { APPLE_MORNING, appleXml, record, writeZip } from '../packages/exports/test/fixtures.js'
import { createAnonymizeProcessor } from '../services/anonymizer/src/anonymize-processor.js'
import { closeCohortWindows } from '../services/anonymizer/src/cohort-closer.js'
import { historyBatchOf } from '../services/anonymizer/src/time-windows.js'
import { createAnonymizerMetrics } from '../services/anonymizer/src/metrics.js'
import { exactHeartRateDefaultPolicy, policyFrom } from '../services/anonymizer/test/support.js'
import { PrivacyStore } from '../services/anonymizer/src/privacy-store.js'
import { deriveKeys } from '../services/anonymizer/src/anonymize.js'
import { jobContext, silentLogger, testRedis, uniquePrefix } from './helpers.js'

/**
 * An Apple Health export through the real anonymiser to the records a buyer receives: exact values,
 * no device or source, and one record, one release when the same export comes again or changes.
 */
const prefix = uniquePrefix('exports-release')
const { redis, cleanup } = testRedis(prefix)
const logger = silentLogger()
const dir = mkdtempSync(join(tmpdir(), 'fitstream-exports-release-'))
const userId = 'export-person-0001'
/** After the fixture's morning (2026-11-30), as the import would run; cohorts are not in this policy. */
const NOW = Date.UTC(2026, 11, 6, 12)

const policy = policyFrom({
  version: 1,
  pseudonym: { scheme: 'hmac-sha256' },
  budget: { period: 'month', epsilon: 4 },
  cohorts: { k: 10 },
  types: {
    steps: { release: 'individual', individual: { consent: 'with-type', fields: { count: {} } } },
    heart_rate: { release: 'individual', individual: { consent: 'with-type', fields: { avg: {}, max: {}, min: {} } } },
    sleep: { release: 'individual', individual: { consent: 'with-type', fields: { light_min: {}, rem_min: {} } } },
  },
})
let queues: StageQueues
let anonymize: ReturnType<typeof createAnonymizeProcessor>
const ledger = new Map<string, LedgerEntry>()

beforeAll(() => {
  queues = new StageQueues({
    connection: redis,
    prefix,
    retry: {
      sync: { attempts: 1, backoffMs: 100 },
      fetch: { attempts: 1, backoffMs: 100 },
      anonymize: { attempts: 1, backoffMs: 100 },
      publish: { attempts: 1, backoffMs: 100 },
    },
    logger,
  })
  anonymize = createAnonymizeProcessor({
    policy,
    keys: deriveKeys(Buffer.alloc(32, 7)),
    queues,
    store: new PrivacyStore(redis, prefix, policy),
    metrics: createAnonymizerMetrics(createMetrics('exports-release-test')),
    now: () => NOW,
  })
})
afterAll(async () => {
  await queues.close()
  await cleanup()
  rmSync(dir, { recursive: true, force: true })
})

let serial = 0
const HOUR = 3_600_000
const DAY = 24 * HOUR
/** What the token service does with an upload, against this test's ledger; returns the records published for it. */
async function importAndRelease(xml: string): Promise<ReleasableRecord[]> {
  const path = join(dir, `export-${serial++}.zip`)
  writeFileSync(path, writeZip([{ name: 'apple_health_export/export.xml', data: xml }]))
  const result = await importArchive(await fileSource(path), { dates: { notBeforeMs: Date.UTC(2000, 0, 1), notAfterMs: NOW } })
  const sellable = [...result.samples()].filter((s) => ['steps', 'heart_rate', 'sleep'].includes(s.type))
  const decision = decideRelease(sellable, ledger, undefined)
  for (const [key, entry] of decision.next) ledger.set(key, entry)
  const before = (await queues.queue('publish').getJobs(['waiting'])).length
  if (decision.release.length > 0) {
    const window = { startMs: decision.release[0]!.startMs, endMs: Math.max(...decision.release.map((s: FitnessSample) => s.endMs)) }
    await anonymize({ syncId: `import-${serial}`, userId, window, samples: decision.release }, jobContext(logger))
  }
  const jobs = await queues.queue('publish').getJobs(['waiting'])
  expect(jobs.length - before).toBeLessThanOrEqual(1)
  return jobs.length === before ? [] : (jobs.sort((a, b) => a.timestamp - b.timestamp).at(-1)!.data as PublishJobData).records
}

const view = (records: ReleasableRecord[]) =>
  records
    .map((r) => ({ type: r.type, start: r.start, end: r.end, values: r.values, unit: r.unit, revision: r.revision }))
    .sort((a, b) => a.start.localeCompare(b.start) || a.type.localeCompare(b.type))

describe('an export, end to end to the records a buyer receives', () => {
  let first: ReleasableRecord[]

  it('releases each consented hour with exact values and nothing of the device, source or file', async () => {
    first = await importAndRelease(APPLE_MORNING)
    expect(view(first)).toEqual([
      { type: 'sleep', start: '2026-11-30T00:00:00.000Z', end: '2026-11-30T01:00:00.000Z', values: { light_min: 30 }, unit: 'min', revision: 0 },
      { type: 'sleep', start: '2026-11-30T01:00:00.000Z', end: '2026-11-30T02:00:00.000Z', values: { light_min: 15, rem_min: 30 }, unit: 'min', revision: 0 },
      {
        type: 'heart_rate',
        start: '2026-11-30T06:00:00.000Z',
        end: '2026-11-30T07:00:00.000Z',
        values: { avg: 75, max: 90, min: 60 },
        unit: 'bpm',
        revision: 0,
      },
      { type: 'steps', start: '2026-11-30T06:00:00.000Z', end: '2026-11-30T07:00:00.000Z', values: { count: 650 }, unit: 'steps', revision: 0 },
      { type: 'steps', start: '2026-11-30T07:00:00.000Z', end: '2026-11-30T08:00:00.000Z', values: { count: 150 }, unit: 'steps', revision: 0 },
    ])
    expect(JSON.stringify(first)).not.toMatch(/Alice|Watch|HKDevice|serial|export|origin|export-person/i)
  })

  it('releases nothing when the same export is imported again', async () => {
    expect(await importAndRelease(APPLE_MORNING)).toEqual([])
  })

  it('releases a changed hour once, as the next revision of the same record', async () => {
    const changed = await importAndRelease(APPLE_MORNING.replace('value="500"', 'value="600"'))
    expect(view(changed)).toEqual([
      { type: 'steps', start: '2026-11-30T06:00:00.000Z', end: '2026-11-30T07:00:00.000Z', values: { count: 750 }, unit: 'steps', revision: 1 },
    ])
    const earlier = first.find((r) => r.type === 'steps' && r.start === '2026-11-30T06:00:00.000Z')!
    expect(changed[0]!.id).toBe(earlier.id)
    expect(ledger.get(ledgerKey({ type: 'steps', startMs: Date.UTC(2026, 10, 30, 6) }))?.revision).toBe(1)
  })
})

/**
 * Three weeks of five people's Apple Health exports, uploaded after those days' live cohort cells have
 * closed: with the default policy's history cohorts they are sold as back-dated cells of the upload's
 * week, once, and nobody is counted twice. Heart rate's cells carry noise too small to move a value
 * off its grid (support.ts), so the buyer's rows can be worked out from the files.
 */
describe('an export’s past, into history cohorts', () => {
  const historyPolicy = exactHeartRateDefaultPolicy()
  const historyKeys = deriveKeys(Buffer.alloc(32, 9))
  const metrics = createAnonymizerMetrics(createMetrics('exports-history-test'))
  // Redis expires cells by the real clock a week after they close, so the batch is the current one.
  const batch = historyBatchOf(Date.now(), 7)
  const now = batch.startMs + HOUR
  const lastDay = batch.startMs - 3 * DAY
  const days = Array.from({ length: 21 }, (_, i) => lastDay - (20 - i) * DAY)
  const people = Array.from({ length: 5 }, (_, i) => ({ userId: `export-history-${i}`, ledger: new Map<string, LedgerEntry>() }))
  const bpm = (person: number, dayIndex: number): number => 60 + 5 * person + (dayIndex % 4)
  const appleTime = (ms: number): string => `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} +0000`
  /** Two readings a day, in the morning and the evening, averaging the person's bpm for the day. */
  const exportOf = (person: number, shift = 0): string =>
    appleXml(
      days
        .flatMap((day, d) => [
          record('HKQuantityTypeIdentifierHeartRate', 'count/min', String(bpm(person, d) - 3 + shift), appleTime(day + 9.5 * HOUR)),
          record('HKQuantityTypeIdentifierHeartRate', 'count/min', String(bpm(person, d) + 3 + shift), appleTime(day + 18.5 * HOUR)),
        ])
        .join('\n'),
    )
  const store = new PrivacyStore(redis, prefix, historyPolicy)

  /** The token service's part and the anonymiser's: returns what the upload handed on. */
  async function upload(person: number, xml: string, at: number): Promise<number> {
    const path = join(dir, `history-${person}-${serial++}.zip`)
    writeFileSync(path, writeZip([{ name: 'apple_health_export/export.xml', data: xml }]))
    const result = await importArchive(await fileSource(path), { dates: { notBeforeMs: Date.UTC(2000, 0, 1), notAfterMs: at } })
    const { userId, ledger: own } = people[person]!
    const decision = decideRelease(
      [...result.samples()].filter((s) => s.type === 'heart_rate'),
      own,
      undefined,
    )
    for (const [key, entry] of decision.next) own.set(key, entry)
    if (decision.release.length > 0) {
      const processor = createAnonymizeProcessor({ policy: historyPolicy, keys: historyKeys, queues, store, metrics, now: () => at })
      const window = { startMs: decision.release[0]!.startMs, endMs: Math.max(...decision.release.map((s) => s.endMs)) }
      await processor({ syncId: `history-${person}-${serial}`, userId, window, samples: decision.release }, jobContext(logger))
    }
    return decision.release.length
  }
  const cohortsPublished = async (): Promise<CohortRecord[]> =>
    (await queues.queue('publish').getJobs(['waiting'])).flatMap((job) => (job.data as PublishJobData).cohorts)
  const close = (at: number) => closeCohortWindows({ policy: historyPolicy, keys: historyKeys, store, queues, metrics, logger }, at)

  it('sells three weeks of five exports as history cells of the week, with exact counts and means', async () => {
    for (const person of people.keys()) expect(await upload(person, exportOf(person), now)).toBe(2 * days.length)
    expect(await close(batch.endMs)).toEqual({ cells: days.length, released: days.length, suppressed: 0 })
    const rows = await cohortsPublished()
    const batchDay = new Date(batch.startMs).toISOString().slice(0, 10)
    const withoutId = (row: CohortRecord) => Object.fromEntries(Object.entries(row).filter(([key]) => key !== 'id'))
    expect(rows.map(withoutId).sort((a, b) => String(a.start).localeCompare(String(b.start)))).toEqual(
      days.map((day, d) => ({
        type: 'heart_rate',
        start: new Date(day).toISOString(),
        end: new Date(day + DAY).toISOString(),
        release: 'history',
        batch: batchDay,
        contributors: 5,
        values: { avg: Math.round([0, 1, 2, 3, 4].reduce((sum, p) => sum + bpm(p, d), 0) / 5) },
        unit: 'bpm',
      })),
    )
    expect(JSON.stringify(rows)).not.toMatch(/Alice|Watch|HKDevice|serial|export-history/i)
  })

  it('adds nothing when the same exports are uploaded again, or corrected in a later week', async () => {
    const before = await cohortsPublished()
    // The import ledger hands nothing on for an unchanged file.
    for (const person of people.keys()) expect(await upload(person, exportOf(person), now + HOUR)).toBe(0)
    // A corrected file next week goes on as revisions, but every day of it is counted already.
    const next = historyBatchOf(batch.endMs, 7)
    expect(await upload(0, exportOf(0, 10), next.startMs + HOUR)).toBe(2 * days.length)
    expect(await close(next.endMs)).toEqual({ cells: 0, released: 0, suppressed: 0 })
    expect(await cohortsPublished()).toEqual(before)
    const report = await readPrivacyReport(redis, prefix, people[0]!.userId)
    expect(report.totals.cohortContributions).toBe(days.length)
    // Each day's 5,000 charged once, to the month the day falls in.
    const spent = new Map<string, number>()
    for (const day of days) spent.set(new Date(day).toISOString().slice(0, 7), (spent.get(new Date(day).toISOString().slice(0, 7)) ?? 0) + 5_000)
    expect(report.budgets.map(({ period, spent: s }) => [period, s])).toEqual([...spent])
  })
})
