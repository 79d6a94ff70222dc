import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StageQueues, createMetrics, type FitnessSample, type PublishJobData, type ReleasableRecord } from '@fitstream/shared'
import { decideRelease, fileSource, importArchive, ledgerKey, type LedgerEntry } from '../packages/exports/src/index.js'
import { APPLE_MORNING, writeZip } from '../packages/exports/test/fixtures.js'
import { createAnonymizeProcessor } from '../services/anonymizer/src/anonymize-processor.js'
import { createAnonymizerMetrics } from '../services/anonymizer/src/metrics.js'
import { policyFrom } from '../services/anonymizer/test/support.js'
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
