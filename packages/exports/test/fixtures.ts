import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeZip, type ZipEntryInput } from './zip-writer.js'

/** The DTD every Apple Health export begins with: element and attribute declarations only. */
export const APPLE_DTD = `<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 14 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>
<!ATTLIST HealthData locale CDATA #REQUIRED>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record
  type          CDATA #REQUIRED
  unit          CDATA #IMPLIED
  value         CDATA #IMPLIED
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
]>`

const DEVICE = '&lt;&lt;HKDevice: 0x283b10f50&gt;, name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,2, software:10.1&gt;'

/** One `<Record>` as Apple writes it, with the source and device FitStream must never carry. */
export function record(type: string, unit: string | undefined, value: string, start: string, end = start): string {
  return (
    `<Record type="${type}" sourceName="Alice Example’s Apple Watch" sourceVersion="10.1" device="${DEVICE}"` +
    `${unit === undefined ? '' : ` unit="${unit}"`} creationDate="${end}" startDate="${start}" endDate="${end}" value="${value}">` +
    `<MetadataEntry key="HKMetadataKeySyncIdentifier" value="serial-C02XK1ABJG5H"/></Record>`
  )
}

export function appleXml(body: string, dtd = APPLE_DTD): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${dtd}\n<HealthData locale="en_GB">\n <ExportDate value="2026-12-01 09:00:00 +0100"/>\n <Me HKCharacteristicTypeIdentifierDateOfBirth="1990-04-02"/>\n${body}\n</HealthData>\n`
}

/** A realistic Apple export of one morning (times in +0100). */
export const APPLE_MORNING = appleXml(
  [
    record('HKQuantityTypeIdentifierStepCount', 'count', '500', '2026-11-30 07:12:00 +0100', '2026-11-30 07:22:00 +0100'),
    record('HKQuantityTypeIdentifierStepCount', 'count', '300', '2026-11-30 07:50:00 +0100', '2026-11-30 08:10:00 +0100'),
    record('HKQuantityTypeIdentifierHeartRate', 'count/min', '60', '2026-11-30 07:30:00 +0100'),
    record('HKQuantityTypeIdentifierHeartRate', 'count/min', '90', '2026-11-30 07:40:00 +0100'),
    record('HKQuantityTypeIdentifierActiveEnergyBurned', 'kcal', '100', '2026-11-30 07:00:00 +0100', '2026-11-30 07:30:00 +0100'),
    record('HKQuantityTypeIdentifierBasalEnergyBurned', 'kJ', '418.4', '2026-11-30 07:00:00 +0100', '2026-11-30 08:00:00 +0100'),
    record('HKQuantityTypeIdentifierDistanceWalkingRunning', 'km', '1.5', '2026-11-30 07:12:00 +0100', '2026-11-30 07:22:00 +0100'),
    record('HKQuantityTypeIdentifierBodyMass', 'lb', '154.3235835294143', '2026-11-30 07:05:00 +0100'),
    record('HKQuantityTypeIdentifierFlightsClimbed', 'count', '3', '2026-11-30 07:05:00 +0100'),
    record('HKCategoryTypeIdentifierSleepAnalysis', undefined, 'HKCategoryValueSleepAnalysisInBed', '2026-11-30 01:00:00 +0100', '2026-11-30 03:00:00 +0100'),
    record(
      'HKCategoryTypeIdentifierSleepAnalysis',
      undefined,
      'HKCategoryValueSleepAnalysisAsleepCore',
      '2026-11-30 01:30:00 +0100',
      '2026-11-30 02:15:00 +0100',
    ),
    record(
      'HKCategoryTypeIdentifierSleepAnalysis',
      undefined,
      'HKCategoryValueSleepAnalysisAsleepREM',
      '2026-11-30 02:15:00 +0100',
      '2026-11-30 02:45:00 +0100',
    ),
    `<Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="45" durationUnit="min" sourceName="Alice Example’s Apple Watch" device="${DEVICE}" creationDate="2026-11-30 08:45:00 +0100" startDate="2026-11-30 08:00:00 +0100" endDate="2026-11-30 08:45:00 +0100"><MetadataEntry key="HKIndoorWorkout" value="0"/></Workout>`,
  ].join('\n'),
)

const nanos = (iso: string): number => Date.parse(iso) * 1e6

function fitPoint(type: string, startIso: string, endIso: string, value: Record<string, number>) {
  return {
    startTimeNanos: nanos(startIso),
    endTimeNanos: nanos(endIso),
    dataTypeName: type,
    originDataSourceId: 'raw:com.google.step_count.cumulative:Google:Pixel Watch 2:8c1fe0a9:Step Counter',
    fitValue: [{ value }],
    modifiedTimeMillis: Date.parse(endIso),
  }
}

/** A realistic Takeout archive of one morning, with German folder names. */
export function takeoutEntries(): ZipEntryInput[] {
  const dir = 'Takeout/Fit/Alle Daten'
  const file = (source: string, points: unknown[]) => JSON.stringify({ 'Data Source': source, 'Data Points': points }, null, 1)
  return [
    {
      name: `${dir}/derived_com.google.step_count.delta_com.google.an.json`,
      data: file('derived:com.google.step_count.delta:com.google.android.gms:merge_step_deltas', [
        fitPoint('com.google.step_count.delta', '2026-12-01T06:00:00Z', '2026-12-01T06:10:00Z', { intVal: 400 }),
        fitPoint('com.google.step_count.delta', '2026-12-01T06:55:00Z', '2026-12-01T07:05:00Z', { intVal: 100 }),
      ]),
    },
    {
      // The watch's own copy of the same steps: counted already in Google's merged stream.
      name: `${dir}/raw_com.google.step_count.delta_com.google.android.gms.json`,
      data: file('raw:com.google.step_count.delta:com.google.android.gms:pixel_watch', [
        fitPoint('com.google.step_count.delta', '2026-12-01T06:00:00Z', '2026-12-01T06:10:00Z', { intVal: 400 }),
      ]),
    },
    {
      name: `${dir}/raw_com.google.heart_rate.bpm_com.google.android.apps.fitness.json`,
      data: file('raw:com.google.heart_rate.bpm:com.google.android.apps.fitness:user_input', [
        fitPoint('com.google.heart_rate.bpm', '2026-12-01T06:20:00Z', '2026-12-01T06:20:00Z', { fpVal: 70 }),
        fitPoint('com.google.heart_rate.bpm', '2026-12-01T06:40:00Z', '2026-12-01T06:40:00Z', { fpVal: 80 }),
      ]),
    },
    {
      name: `${dir}/derived_com.google.sleep.segment_com.google.andro.json`,
      data: file('derived:com.google.sleep.segment:com.google.android.gms:merged', [
        fitPoint('com.google.sleep.segment', '2026-12-01T01:00:00Z', '2026-12-01T01:30:00Z', { intVal: 5 }),
      ]),
    },
    {
      name: 'Takeout/Fit/Alle Sitzungen/2026-12-01T06_00_00Z_LAUFEN.json',
      data: JSON.stringify({ fitnessActivity: 'running', startTime: '2026-12-01T06:00:00Z' }),
    },
    { name: 'Takeout/Fit/Tägliche Aktivitätswerte/2026-12-01.csv', data: 'Startzeit,Endzeit,Schritte\n06:00,06:15,400\n' },
    { name: 'Takeout/archive_browser.html', data: '<html>Alice Example</html>' },
  ]
}

/** A temporary folder for fixtures, removed by `cleanup()`. */
export function fixtureDir(): { dir: string; write(name: string, data: Buffer): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'fitstream-exports-'))
  return {
    dir,
    write: (name, data) => {
      const path = join(dir, name)
      writeFileSync(path, data)
      return path
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  }
}

export { writeZip }
