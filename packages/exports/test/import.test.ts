import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Readable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import type { FitnessSample } from '@fitstream/shared'
import { EncryptedSpool, ImportError, fileSource, importArchive, parseAppleDate, type ImportOptions } from '../src/index.js'
import { APPLE_DTD, APPLE_MORNING, appleXml, fixtureDir, record, takeoutEntries, writeZip } from './fixtures.js'

const fixtures = fixtureDir()
afterAll(() => fixtures.cleanup())

const OPTIONS: ImportOptions = { dates: { notBeforeMs: Date.UTC(2000, 0, 1), notAfterMs: Date.UTC(2026, 11, 7) } }
let serial = 0

async function importZip(zip: Buffer, options: Partial<ImportOptions> = {}) {
  return importArchive(await fileSource(fixtures.write(`upload-${serial++}.zip`, zip)), { ...OPTIONS, ...options })
}

const appleZip = (xml: string) =>
  writeZip([
    { name: 'apple_health_export/export.xml', data: xml },
    { name: 'apple_health_export/export_cda.xml', data: '<ClinicalDocument/>' },
  ])

async function refusal(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(ImportError)
  return { code: (error as ImportError).code, message: (error as ImportError).message }
}

/** A result's samples, in time order and by type name within an hour. */
const samplesOf = (result: { samples(): Iterable<FitnessSample> }) =>
  [...result.samples()].sort((a, b) => a.startMs - b.startMs || a.type.localeCompare(b.type))

const at = (iso: string) => Date.parse(iso)
const hour = (iso: string) => ({ startMs: at(iso), endMs: at(iso) + 3_600_000 })

describe('Apple Health export.zip', () => {
  it('becomes hourly samples with converted units and nothing of the device, source or file', async () => {
    const result = await importZip(appleZip(APPLE_MORNING))
    expect(result.format).toBe('apple-health')
    expect(samplesOf(result)).toEqual([
      { type: 'sleep', ...hour('2026-11-30T00:00:00Z'), values: { light_min: 30 }, unit: 'min', revision: 0 },
      { type: 'sleep', ...hour('2026-11-30T01:00:00Z'), values: { light_min: 15, rem_min: 30 }, unit: 'min', revision: 0 },
      { type: 'calories', ...hour('2026-11-30T06:00:00Z'), values: { kcal: 200 }, unit: 'kcal', revision: 0 },
      { type: 'distance', ...hour('2026-11-30T06:00:00Z'), values: { metres: 1500 }, unit: 'm', revision: 0 },
      { type: 'heart_rate', ...hour('2026-11-30T06:00:00Z'), values: { avg: 75, max: 90, min: 60 }, unit: 'bpm', revision: 0 },
      { type: 'steps', ...hour('2026-11-30T06:00:00Z'), values: { count: 650 }, unit: 'steps', revision: 0 },
      { type: 'weight', ...hour('2026-11-30T06:00:00Z'), values: { avg: 70, max: 70, min: 70 }, unit: 'kg', revision: 0 },
      { type: 'steps', ...hour('2026-11-30T07:00:00Z'), values: { count: 150 }, unit: 'steps', revision: 0 },
      { type: 'workouts', ...hour('2026-11-30T07:00:00Z'), values: { running_min: 45 }, unit: 'min', revision: 0 },
    ])
    expect(result.records).toBe(12)
    expect(result.skipped).toBe(1)
    expect(result.summary.steps).toEqual({ records: 2, buckets: 2, firstMs: at('2026-11-30T06:12:00Z'), lastMs: at('2026-11-30T07:10:00Z') })
    expect(JSON.stringify([samplesOf(result), result.summary])).not.toMatch(/Alice|Watch|HKDevice|serial|export|apple_health|origin/i)
  })

  it('gives the same samples for the same file every time', async () => {
    const zip = appleZip(APPLE_MORNING)
    expect(samplesOf(await importZip(zip))).toEqual(samplesOf(await importZip(zip)))
  })

  it('reports progress up to the whole export', async () => {
    const seen: number[] = []
    await importZip(appleZip(APPLE_MORNING), { onProgress: ({ fraction }) => seen.push(fraction) })
    expect(seen.at(-1)).toBe(1)
    expect(seen.every((f, i) => i === 0 || f >= seen[i - 1]!)).toBe(true)
  })

  it('reads dates as Apple writes them, with their offset', () => {
    expect(parseAppleDate('2026-11-30 07:12:00 +0100')).toBe(at('2026-11-30T06:12:00Z'))
    expect(parseAppleDate('2026-11-30 07:12:00 -0530')).toBe(at('2026-11-30T12:42:00Z'))
    expect(parseAppleDate('2026-02-30 07:12:00 +0100')).toBeUndefined()
    expect(parseAppleDate('2026-11-30T07:12:00Z')).toBeUndefined()
  })
})

describe('Google Takeout Fit', () => {
  it('reads localised folders, takes summed types from the merged stream only, and skips sessions and CSVs', async () => {
    const result = await importZip(writeZip(takeoutEntries()))
    expect(result.format).toBe('google-takeout')
    expect(samplesOf(result)).toEqual([
      { type: 'sleep', ...hour('2026-12-01T01:00:00Z'), values: { deep_min: 30 }, unit: 'min', revision: 0 },
      { type: 'heart_rate', ...hour('2026-12-01T06:00:00Z'), values: { avg: 75, max: 80, min: 70 }, unit: 'bpm', revision: 0 },
      { type: 'steps', ...hour('2026-12-01T06:00:00Z'), values: { count: 450 }, unit: 'steps', revision: 0 },
      { type: 'steps', ...hour('2026-12-01T07:00:00Z'), values: { count: 50 }, unit: 'steps', revision: 0 },
    ])
    expect(result.records).toBe(5)
    expect(JSON.stringify([samplesOf(result), result.summary])).not.toMatch(/Pixel|Step Counter|android|Alice|Takeout|Daten|merge/i)
  })

  it('refuses a Takeout file cut in the middle of its JSON', async () => {
    const entries = takeoutEntries()
    const cut = { ...entries[0]!, data: String(entries[0]!.data).slice(0, 300) }
    expect((await refusal(importZip(writeZip([cut])))).code).toBe('FST_ERR_IMPORT_TRUNCATED')
  })

  it('refuses a value of the wrong kind or unit', async () => {
    const bad = JSON.stringify({
      'Data Source': 'raw:com.google.heart_rate.bpm:x',
      'Data Points': [
        {
          startTimeNanos: at('2026-12-01T06:00:00Z') * 1e6,
          endTimeNanos: at('2026-12-01T06:00:00Z') * 1e6,
          dataTypeName: 'com.google.heart_rate.bpm',
          fitValue: [{ value: { fpVal: 7200 } }],
        },
      ],
    })
    const { code, message } = await refusal(importZip(writeZip([{ name: 'Takeout/Fit/All Data/raw_hr.json', data: bad }])))
    expect(code).toBe('FST_ERR_IMPORT_UNIT')
    expect(message).toMatch(/heart_rate value is outside 20-300/)
  })
})

describe('hostile uploads', () => {
  it('refuses what is not a zip', async () => {
    const { code, message } = await refusal(importZip(Buffer.from('%PDF-1.7 this is a tax return, not an export')))
    expect(code).toBe('FST_ERR_IMPORT_NOT_ZIP')
    expect(message).toMatch(/not a zip archive/)
  })

  it('refuses a truncated zip', async () => {
    const zip = appleZip(APPLE_MORNING)
    expect((await refusal(importZip(zip.subarray(0, zip.length - 40)))).code).toBe('FST_ERR_IMPORT_TRUNCATED')
  })

  it('refuses a zip of something else', async () => {
    const { code } = await refusal(importZip(writeZip([{ name: 'holiday/photo.jpg', data: Buffer.alloc(100, 1) }])))
    expect(code).toBe('FST_ERR_IMPORT_UNKNOWN_FORMAT')
  })

  it('refuses an XML export whose root is not HealthData', async () => {
    const { code } = await refusal(importZip(appleZip('<?xml version="1.0"?><html><body/></html>')))
    expect(code).toBe('FST_ERR_IMPORT_UNKNOWN_FORMAT')
  })

  it('refuses a zip bomb by its declared ratio', async () => {
    const zeros = Buffer.alloc(64 * 1024 ** 2)
    const { code } = await refusal(importZip(writeZip([{ name: 'apple_health_export/export.xml', data: zeros }])))
    expect(code).toBe('FST_ERR_IMPORT_ZIP_BOMB')
  })

  it('stops inflating a bomb that lies about its size, while inflating', async () => {
    // Declares 1 KiB inflated: only the bytes coming out of the inflater can tell.
    const bomb = Buffer.concat([Buffer.from(appleXml('').replace('</HealthData>', '')), Buffer.alloc(64 * 1024 ** 2, 0x20)])
    const rss = process.memoryUsage().rss
    const { code } = await refusal(importZip(writeZip([{ name: 'apple_health_export/export.xml', data: bomb, declaredSize: 1024 }])))
    expect(code).toBe('FST_ERR_IMPORT_ZIP_BOMB')
    expect(process.memoryUsage().rss - rss).toBeLessThan(48 * 1024 ** 2)
  })

  it('stops at the total inflated limit', async () => {
    const { code } = await refusal(importZip(appleZip(APPLE_MORNING), { limits: { maxInflatedBytes: 2_000 } }))
    expect(code).toBe('FST_ERR_IMPORT_ZIP_BOMB')
  })

  it('refuses an archive with more entries than an export has', async () => {
    const entries = Array.from({ length: 50 }, (_, i) => ({ name: `f${i}.txt`, data: 'x' }))
    expect((await refusal(importZip(writeZip(entries), { limits: { maxEntries: 10 } }))).code).toBe('FST_ERR_IMPORT_ZIP_BOMB')
  })

  it.each(['../../etc/cron.d/evil', '/etc/passwd', 'apple_health_export/../../evil.xml'])('refuses an entry named %s', async (name) => {
    const zip = writeZip([
      { name: 'apple_health_export/export.xml', data: APPLE_MORNING },
      { name, data: 'x' },
    ])
    expect((await refusal(importZip(zip))).code).toBe('FST_ERR_IMPORT_UNSAFE_PATH')
  })

  it('refuses entity declarations (billion laughs) without expanding them', async () => {
    const laughs = `<!DOCTYPE HealthData [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>`
    const xml = appleXml(record('HKQuantityTypeIdentifierStepCount', 'count', '&lol2;', '2026-11-30 07:12:00 +0100'), laughs)
    const { code, message } = await refusal(importZip(appleZip(xml)))
    expect(code).toBe('FST_ERR_IMPORT_XML_ENTITY')
    expect(message).toMatch(/never expands/)
  })

  it('refuses an external DTD (XXE)', async () => {
    const xxe = `<!DOCTYPE HealthData SYSTEM "file:///etc/passwd">`
    expect((await refusal(importZip(appleZip(appleXml('', xxe))))).code).toBe('FST_ERR_IMPORT_XML_ENTITY')
  })

  it('refuses a reference to an undeclared entity', async () => {
    const xml = appleXml(record('HKQuantityTypeIdentifierStepCount', 'count', '&xxe;', '2026-11-30 07:12:00 +0100'))
    expect((await refusal(importZip(appleZip(xml)))).code).toBe('FST_ERR_IMPORT_XML_ENTITY')
  })

  it('refuses XML that is not well-formed, naming the line', async () => {
    const xml = appleXml(record('HKQuantityTypeIdentifierStepCount', 'count', '5', '2026-11-30 07:12:00 +0100')).replace('</HealthData>', '')
    const { code, message } = await refusal(importZip(appleZip(xml)))
    expect(code).toBe('FST_ERR_IMPORT_MALFORMED')
    expect(message).toMatch(/line \d+/)
  })

  it('refuses a record whose value is not a number', async () => {
    const xml = appleXml(record('HKQuantityTypeIdentifierStepCount', 'count', 'many', '2026-11-30 07:12:00 +0100'))
    const { code, message } = await refusal(importZip(appleZip(xml)))
    expect(code).toBe('FST_ERR_IMPORT_MALFORMED')
    expect(message).toMatch(/StepCount record has no numeric value/)
  })

  it('refuses a record with a date it cannot read', async () => {
    const xml = appleXml(record('HKQuantityTypeIdentifierStepCount', 'count', '5', 'yesterday'))
    expect((await refusal(importZip(appleZip(xml)))).code).toBe('FST_ERR_IMPORT_MALFORMED')
  })

  it.each(['1899-12-31 23:00:00 +0000', '2031-01-01 00:00:00 +0000'])('refuses a record dated %s', async (date) => {
    const xml = appleXml(record('HKQuantityTypeIdentifierStepCount', 'count', '5', date))
    const { code, message } = await refusal(importZip(appleZip(xml)))
    expect(code).toBe('FST_ERR_IMPORT_DATE_RANGE')
    expect(message).toMatch(/outside 2000-01-01 - 2026-12-07/)
  })

  it.each([
    ['HKQuantityTypeIdentifierStepCount', 'km', '5', /in "km", not one of count/],
    ['HKQuantityTypeIdentifierDistanceWalkingRunning', 'ft', '5', /not one of m, km, mi/],
    ['HKQuantityTypeIdentifierHeartRate', 'count/min', '7200', /outside 20-300 bpm/],
    ['HKQuantityTypeIdentifierBodyMass', 'kg', '70000', /outside 1-700 kg/],
  ])('refuses %s in %s (%s)', async (type, unit, value, why) => {
    const xml = appleXml(record(type, unit, value, '2026-11-30 07:12:00 +0100'))
    const { code, message } = await refusal(importZip(appleZip(xml)))
    expect(code).toBe('FST_ERR_IMPORT_UNIT')
    expect(message).toMatch(why)
  })

  it('refuses an element longer than the limit without holding it', async () => {
    const xml = appleXml(`<Record type="HKQuantityTypeIdentifierStepCount" sourceName="${randomBytes(2 * 1024 ** 2).toString('base64')}"/>`)
    expect((await refusal(importZip(appleZip(xml)))).code).toBe('FST_ERR_IMPORT_MALFORMED')
  })

  it('refuses an archive larger than the cap', async () => {
    const { code } = await refusal(importZip(appleZip(APPLE_MORNING), { limits: { maxUploadBytes: 500 } }))
    expect(code).toBe('FST_ERR_IMPORT_TOO_LARGE')
  })

  it('keeps importing others after a refusal', async () => {
    const results = await Promise.allSettled([importZip(Buffer.from('junk')), importZip(appleZip(APPLE_MORNING))])
    expect(results[0]!.status).toBe('rejected')
    expect(results[1]!.status).toBe('fulfilled')
  })
})

describe('the encrypted spool an upload rests in', () => {
  it('holds the upload encrypted and imports from it', async () => {
    const spool = EncryptedSpool.create(fixtures.dir)
    const zip = appleZip(APPLE_MORNING.replace('<ExportDate', `<!-- ${'padding '.repeat(4000)} --><ExportDate`))
    let reported = 0
    await spool.write(Readable.from([zip.subarray(0, 1000), zip.subarray(1000)]), 10 * 1024 ** 2, (bytes) => (reported = bytes))
    expect(reported).toBe(zip.length)
    const atRest = readFileSync(spool.path)
    expect(atRest.length).toBe(zip.length)
    expect(atRest.includes(Buffer.from('apple_health_export'))).toBe(false)
    expect(atRest.includes(Buffer.from('padding'))).toBe(false)
    const result = await importArchive(spool, OPTIONS)
    expect(samplesOf(result)).toEqual(samplesOf(await importZip(zip)))
    await spool.destroy()
    expect(() => readFileSync(spool.path)).toThrow(/ENOENT/)
  })

  it('refuses an upload over the cap as it streams', async () => {
    const spool = EncryptedSpool.create(fixtures.dir)
    const endless = Readable.from(
      (function* () {
        for (let i = 0; i < 1000; i++) yield Buffer.alloc(64 * 1024)
      })(),
    )
    const error = await spool.write(endless, 1024 ** 2).catch((e: unknown) => e)
    expect((error as ImportError).code).toBe('FST_ERR_IMPORT_TOO_LARGE')
    expect(spool.size).toBeLessThan(2 * 1024 ** 2)
    await spool.destroy()
  })

  it('treats a client that goes away halfway as an aborted upload', async () => {
    const spool = EncryptedSpool.create(fixtures.dir)
    const body = new Readable({ read() {} })
    body.push(Buffer.alloc(1000))
    setImmediate(() => body.destroy(new Error('aborted')))
    const error = await spool.write(body, 1024 ** 2).catch((e: unknown) => e)
    expect((error as ImportError).code).toBe('FST_ERR_IMPORT_ABORTED')
    await spool.destroy()
  })
})

export { APPLE_DTD }
