/**
 * The export importer's benchmark (not a test): generates an Apple Health export.zip of a given size
 * (realistic records: heart rate, steps, energy, distance, sleep, workouts, weight, each with the
 * source and device an iPhone writes), then imports it in a fresh process and reports parse speed
 * (MB/s of XML, records/s), the hours found, and the importer's peak RSS, which must stay under
 * 200 MB whatever the size.
 *
 *   node packages/devstack/dist/bench-import.js [--mb 200] [--dir /tmp]
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { crc32, createDeflateRaw } from 'node:zlib'
import { IMPORT_CHILD_HEAP_MB, fileSource, importArchive } from '@fitstream/exports'

const RSS_LIMIT_MB = 200
const say = (line: string): void => void process.stdout.write(`${line}\n`)
const HOUR = 3_600_000
const DEVICE = '&lt;&lt;HKDevice: 0x283b10f50&gt;, name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,2, software:10.1&gt;'

function appleDate(ms: number): string {
  // Written in +0100, as a phone in Central Europe would.
  const local = new Date(ms + HOUR).toISOString()
  return `${local.slice(0, 10)} ${local.slice(11, 19)} +0100`
}

function record(type: string, unit: string | undefined, value: string, startMs: number, endMs = startMs): string {
  return ` <Record type="${type}" sourceName="Bench Person’s Apple Watch" sourceVersion="10.1" device="${DEVICE}"${unit === undefined ? '' : ` unit="${unit}"`} creationDate="${appleDate(endMs)}" startDate="${appleDate(startMs)}" endDate="${appleDate(endMs)}" value="${value}"/>\n`
}

/** One hour of a busy wearer's records; `readings` heart-rate readings in it. */
function hourOfRecords(startMs: number, readings: number, seed: number): string {
  const parts: string[] = []
  const hourOfDay = new Date(startMs).getUTCHours()
  for (let i = 0; i < readings; i++)
    parts.push(record('HKQuantityTypeIdentifierHeartRate', 'count/min', String(55 + ((seed + i * 7) % 60)), startMs + Math.floor((i * HOUR) / readings)))
  if (hourOfDay >= 23 || hourOfDay < 6) {
    parts.push(record('HKCategoryTypeIdentifierSleepAnalysis', undefined, 'HKCategoryValueSleepAnalysisAsleepCore', startMs, startMs + 40 * 60_000))
    parts.push(record('HKCategoryTypeIdentifierSleepAnalysis', undefined, 'HKCategoryValueSleepAnalysisAsleepREM', startMs + 40 * 60_000, startMs + HOUR))
    return parts.join('')
  }
  for (let q = 0; q < 4; q++) {
    const from = startMs + q * 15 * 60_000
    parts.push(record('HKQuantityTypeIdentifierStepCount', 'count', String((seed * 13 + q * 97) % 900), from, from + 15 * 60_000))
  }
  parts.push(record('HKQuantityTypeIdentifierActiveEnergyBurned', 'kcal', String(((seed % 200) / 3).toFixed(3)), startMs, startMs + HOUR))
  parts.push(record('HKQuantityTypeIdentifierBasalEnergyBurned', 'kcal', '68.5', startMs, startMs + HOUR))
  parts.push(record('HKQuantityTypeIdentifierDistanceWalkingRunning', 'km', String(((seed % 40) / 10).toFixed(2)), startMs, startMs + 30 * 60_000))
  if (hourOfDay === 7) parts.push(record('HKQuantityTypeIdentifierBodyMass', 'kg', String(70 + (seed % 30) / 10), startMs))
  if (hourOfDay === 18) {
    parts.push(
      ` <Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="45" durationUnit="min" sourceName="Bench Person’s Apple Watch" device="${DEVICE}" creationDate="${appleDate(startMs + 45 * 60_000)}" startDate="${appleDate(startMs)}" endDate="${appleDate(startMs + 45 * 60_000)}"/>\n`,
    )
  }
  return parts.join('')
}

/** Writes export.zip with one deflated entry streamed in (sizes in a data descriptor); returns the XML's size. */
async function generate(path: string, targetBytes: number): Promise<{ xmlBytes: number; hours: number }> {
  const out = createWriteStream(path)
  const name = Buffer.from('apple_health_export/export.xml')
  const local = Buffer.alloc(30)
  local.writeUInt32LE(0x04034b50, 0)
  local.writeUInt16LE(20, 4)
  local.writeUInt16LE(0x0808, 6)
  local.writeUInt16LE(8, 8)
  local.writeUInt16LE(name.length, 26)
  out.write(local)
  out.write(name)
  let compressed = 0
  const deflate = createDeflateRaw({ level: 6 })
  deflate.on('data', (chunk: Buffer) => {
    compressed += chunk.length
    if (!out.write(chunk)) {
      deflate.pause()
      out.once('drain', () => deflate.resume())
    }
  })
  let crc = 0
  let xmlBytes = 0
  const write = async (text: string): Promise<void> => {
    const bytes = Buffer.from(text)
    crc = crc32(bytes, crc)
    xmlBytes += bytes.length
    if (!deflate.write(bytes)) await once(deflate, 'drain')
  }
  await write(
    '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE HealthData [\n<!ELEMENT HealthData (ExportDate,Me,(Record|Workout)*)>\n<!ATTLIST Record type CDATA #REQUIRED>\n]>\n<HealthData locale="en_GB">\n <ExportDate value="2026-12-01 09:00:00 +0100"/>\n',
  )
  // Hours from 2001 on; denser heart rate where the target needs more than 25 years of hours.
  const first = Date.UTC(2001, 0, 1)
  const available = Math.floor((Date.UTC(2026, 10, 1) - first) / HOUR)
  const readings = Math.max(6, Math.ceil(targetBytes / available / 420))
  let hours = 0
  let batch = ''
  for (let hour = 0; xmlBytes + batch.length < targetBytes && hour < available; hour++) {
    batch += hourOfRecords(first + hour * HOUR, readings, hour)
    hours++
    if (batch.length > 1 << 20) {
      await write(batch)
      batch = ''
    }
  }
  await write(`${batch}</HealthData>\n`)
  deflate.end()
  await once(deflate, 'end')
  const descriptor = Buffer.alloc(16)
  descriptor.writeUInt32LE(0x08074b50, 0)
  descriptor.writeUInt32LE(crc >>> 0, 4)
  descriptor.writeUInt32LE(compressed, 8)
  descriptor.writeUInt32LE(xmlBytes, 12)
  const central = Buffer.alloc(46)
  central.writeUInt32LE(0x02014b50, 0)
  central.writeUInt16LE(20, 4)
  central.writeUInt16LE(20, 6)
  central.writeUInt16LE(0x0808, 8)
  central.writeUInt16LE(8, 10)
  central.writeUInt32LE(crc >>> 0, 16)
  central.writeUInt32LE(compressed, 20)
  central.writeUInt32LE(xmlBytes, 24)
  central.writeUInt16LE(name.length, 28)
  const directoryAt = 30 + name.length + compressed + 16
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0)
  end.writeUInt16LE(1, 8)
  end.writeUInt16LE(1, 10)
  end.writeUInt32LE(46 + name.length, 12)
  end.writeUInt32LE(directoryAt, 16)
  out.end(Buffer.concat([descriptor, central, name, end]))
  await once(out, 'finish')
  return { xmlBytes, hours }
}

/** The import itself, in this (fresh) process: prints one JSON line. */
async function runImport(path: string): Promise<void> {
  let peak = process.memoryUsage().rss
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20)
  const started = performance.now()
  const result = await importArchive(await fileSource(path), { dates: { notBeforeMs: Date.UTC(2000, 0, 1), notAfterMs: Date.UTC(2027, 0, 1) } })
  const parsedMs = performance.now() - started
  let samples = 0
  for (const sample of result.samples()) if (sample.revision === 0) samples++
  const totalMs = performance.now() - started
  clearInterval(sampler)
  peak = Math.max(peak, process.resourceUsage().maxRSS * 1024)
  process.stdout.write(`${JSON.stringify({ parsedMs, totalMs, records: result.records, samples, peakRssMb: peak / 1024 ** 2 })}\n`)
}

const USAGE = `npm run bench:import -- [--mb <size>] [--dir <folder>]

Generates an Apple Health export.zip whose export.xml is about <size> MB, imports it in a fresh process
under the import child's heap ceiling (${IMPORT_CHILD_HEAP_MB} MB), and prints parse speed (MB/s of XML,
records/s), the hours found, the end-to-end time of the import process (start, read, parse, every sample
yielded, exit) and its peak RSS; exits 1 at ${RSS_LIMIT_MB} MB or more.

  --mb <size>      size of export.xml in MB (default 200)
  --dir <folder>   where the export is written, and removed afterwards (default: the OS temp folder)
  --help           this text`

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  if (args.includes('--help')) return say(USAGE)
  const flag = (name: string): string | undefined => {
    const i = args.indexOf(name)
    return i < 0 ? undefined : args[i + 1]
  }
  const importPath = flag('--import')
  if (importPath !== undefined) return runImport(importPath)

  const mb = Number(flag('--mb') ?? 200)
  const dir = mkdtempSync(join(flag('--dir') ?? tmpdir(), 'fitstream-bench-import-'))
  try {
    const zip = join(dir, 'export.zip')
    const generatedAt = performance.now()
    const { xmlBytes, hours } = await generate(zip, mb * 1024 ** 2)
    say(
      `generated export.xml: ${(xmlBytes / 1024 ** 2).toFixed(0)} MB (${(statSync(zip).size / 1024 ** 2).toFixed(0)} MB zipped), ${hours} hours, in ${((performance.now() - generatedAt) / 1000).toFixed(0)} s`,
    )
    const spawnedAt = performance.now()
    // Under the token service's import child's heap ceiling, so the peak is the one the service would see.
    const child = spawn(process.execPath, [`--max-old-space-size=${IMPORT_CHILD_HEAP_MB}`, fileURLToPath(import.meta.url), '--import', zip], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    const [code] = (await once(child, 'exit')) as [number]
    const endToEndMs = performance.now() - spawnedAt
    if (code !== 0) throw new Error(`the import process exited with ${code}`)
    const run = JSON.parse(output) as { parsedMs: number; totalMs: number; records: number; samples: number; peakRssMb: number }
    const seconds = run.parsedMs / 1000
    say(
      `parse: ${(xmlBytes / 1024 ** 2 / seconds).toFixed(1)} MB/s of XML, ${Math.round(run.records / seconds)} records/s (${run.records} records in ${seconds.toFixed(1)} s)`,
    )
    say(`samples: ${run.samples} hourly buckets, all yielded ${((run.totalMs - run.parsedMs) / 1000).toFixed(1)} s after the parse`)
    say(`end to end: ${(endToEndMs / 1000).toFixed(1)} s from starting the import process to its exit`)
    say(`importer peak RSS: ${run.peakRssMb.toFixed(0)} MB (limit ${RSS_LIMIT_MB} MB): ${run.peakRssMb < RSS_LIMIT_MB ? 'ok' : 'OVER'}`)
    if (run.peakRssMb >= RSS_LIMIT_MB) process.exitCode = 1
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
