/**
 * Deterministic synthetic fitness data.
 *
 * Everything here is a pure function of a user's seed and time, so tests can compute exactly what
 * the fake will answer. The model mirrors how Google Fit works: devices write raw samples, and an
 * aggregate bucket combines the samples that START inside it (and have ENDED before "now"). Because
 * every bucket size is built from the same samples, a day equals the sum of its hours for additive
 * types, and min/max combine exactly. Floating-point raw values of additive types are multiples of
 * 2^-10, so their sums are exact in IEEE doubles whatever the grouping.
 *
 * Raw samples are generated hour by hour (UTC hours); each hour's samples start inside that hour.
 * The per-hour randomness comes from sha256(JSON.stringify([seed, kind, hourStartMs])) feeding an
 * sfc32 generator, where kind is the raw data type name (or 'profile' / 'sleep-night' / 'device:*').
 * All daily rhythms are in UTC.
 */

import { createHash } from 'node:crypto'
import { fitType, type DeviceRole, type FitTypeSpec } from './catalogue.js'

export const MINUTE_MS = 60_000
export const HOUR_MS = 3_600_000
export const DAY_MS = 86_400_000

/** A raw data point as a device would have written it; `values` follow the raw type's fields. */
export interface RawSample {
  readonly startMs: number
  readonly endMs: number
  readonly values: readonly number[]
}

export type FitValue = { intVal: number; mapVal: [] } | { fpVal: number; mapVal: [] }

/** One point of an aggregate dataset, exactly as the fake serialises it. */
export interface AggregatePoint {
  startTimeNanos: string
  endTimeNanos: string
  dataTypeName: string
  originDataSourceId: string
  value: FitValue[]
  modifiedTimeMillis: string
}

export interface DeviceInfo {
  readonly role: DeviceRole
  /** Google's device type enum value. */
  readonly type: 'phone' | 'watch' | 'scale' | 'unknown'
  readonly manufacturer: string
  readonly model: string
  /** The device serial as Google exposes it (8 hex digits here). */
  readonly uid: string
  readonly version: string
  /** The app that wrote the device's data. */
  readonly packageName: string
}

export interface UserProfile {
  readonly seed: string
  readonly googleId: string
  /** Basal metabolic rate, a multiple of 2^-10. */
  readonly bmrKcalPerHour: number
  /** Metres per step, a multiple of 2^-10. */
  readonly strideM: number
  readonly runner: boolean
  readonly restingHeartRate: number
  readonly weightKg: number
  readonly heightM: number
  readonly bodyFatPercent: number
  /** The UTC hour of the morning weigh-in. */
  readonly weighHourUtc: number
  /** Height is measured on days where floor(dayStartMs / DAY_MS) % 30 equals this. */
  readonly heightDayOffset: number
  readonly systolic: number
  readonly diastolic: number
  readonly home: { readonly lat: number; readonly lng: number }
  readonly devices: Readonly<Record<DeviceRole, DeviceInfo>>
}

// sfc32: tiny, fast and good enough; seeded from a sha256 digest so every stream is independent.
export class Rng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(digest: Buffer) {
    this.a = digest.readUInt32LE(0)
    this.b = digest.readUInt32LE(4)
    this.c = digest.readUInt32LE(8)
    this.d = digest.readUInt32LE(12)
    // Discard the first outputs: the state starts straight from hash bytes.
    for (let i = 0; i < 12; i++) this.next()
  }

  next(): number {
    const t0 = (this.a + this.b) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.d = (this.d + 1) | 0
    const t = (t0 + this.d) | 0
    this.c = (this.c + t) | 0
    return (t >>> 0) / 4_294_967_296
  }

  /** An integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1))
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T
  }
}

function digest(seed: string, kind: string, t: number | string): Buffer {
  return createHash('sha256')
    .update(JSON.stringify([seed, kind, t]))
    .digest()
}

export function rng(seed: string, kind: string, t: number | string): Rng {
  return new Rng(digest(seed, kind, t))
}

/** Multiples of 2^-10 add up exactly, so hourly and daily sums agree to the last bit. */
export function quantize(x: number): number {
  return Math.round(x * 1024) / 1024
}

const round1 = (x: number): number => Math.round(x * 10) / 10
const round6 = (x: number): number => Math.round(x * 1e6) / 1e6

const floorTo = (t: number, unit: number): number => Math.floor(t / unit) * unit
const utcHour = (t: number): number => Math.floor((t - floorTo(t, DAY_MS)) / HOUR_MS)

// Small caches: generation is cheap, but a 90-day request asks for the same nights and profile
// thousands of times. Cleared wholesale when full; correctness never depends on them.
const CACHE_LIMIT = 50_000

function cached<V>(cache: Map<string, V>, key: string, make: () => V): V {
  const hit = cache.get(key)
  if (hit !== undefined) return hit
  if (cache.size >= CACHE_LIMIT) cache.clear()
  const value = make()
  cache.set(key, value)
  return value
}

/** The Google account id (`sub`) of the user with this seed: 21 digits, starting with 1. */
export function googleIdForSeed(seed: string): string {
  const n = BigInt(`0x${digest(seed, 'google-id', 0).toString('hex')}`) % 10n ** 20n
  return `1${n.toString().padStart(20, '0')}`
}

interface DeviceModel {
  readonly manufacturer: string
  readonly model: string
  readonly packageName: string
  readonly version: string
}

const PHONES: readonly DeviceModel[] = [
  { manufacturer: 'Samsung', model: 'SM-G991B', packageName: 'com.sec.android.app.shealth', version: '14' },
  { manufacturer: 'Google', model: 'Pixel 7', packageName: 'com.google.android.apps.fitness', version: '14' },
  { manufacturer: 'OnePlus', model: 'LE2123', packageName: 'com.google.android.apps.fitness', version: '13' },
  { manufacturer: 'Xiaomi', model: 'M2101K6G', packageName: 'com.mi.health', version: '13' },
  { manufacturer: 'Samsung', model: 'SM-A536B', packageName: 'com.sec.android.app.shealth', version: '14' },
]
const WATCHES: readonly DeviceModel[] = [
  { manufacturer: 'Samsung', model: 'SM-R870', packageName: 'com.sec.android.app.shealth', version: '4' },
  { manufacturer: 'Fitbit', model: 'Charge 5', packageName: 'com.fitbit.FitbitMobile', version: '1.188' },
  {
    manufacturer: 'Garmin',
    model: 'Forerunner 255',
    packageName: 'com.garmin.android.apps.connectmobile',
    version: '19.12',
  },
  { manufacturer: 'Google', model: 'Pixel Watch 2', packageName: 'com.google.android.apps.fitness', version: '4' },
]
const SCALES: readonly DeviceModel[] = [
  { manufacturer: 'Withings', model: 'Body+', packageName: 'com.withings.wiscale2', version: '1150' },
  { manufacturer: 'Xiaomi', model: 'XMTZC05HM', packageName: 'com.xiaomi.hm.health', version: '6.3.5' },
  { manufacturer: 'Eufy', model: 'T9149', packageName: 'com.eufylife.smarthome', version: '3.4.1' },
]
const BP_MONITORS: readonly DeviceModel[] = [
  { manufacturer: 'Omron', model: 'HEM-7155T', packageName: 'jp.co.omron.healthcare.omron_connect', version: '7.9' },
  { manufacturer: 'Withings', model: 'BPM Connect', packageName: 'com.withings.wiscale2', version: '1150' },
]
const HOMES: readonly { lat: number; lng: number }[] = [
  { lat: 60.1699, lng: 24.9384 },
  { lat: 52.52, lng: 13.405 },
  { lat: 47.3769, lng: 8.5417 },
  { lat: 38.7223, lng: -9.1393 },
  { lat: 43.6532, lng: -79.3832 },
  { lat: -37.8136, lng: 144.9631 },
  { lat: 30.2672, lng: -97.7431 },
  { lat: 1.3521, lng: 103.8198 },
]

function device(seed: string, role: DeviceRole, models: readonly DeviceModel[], type: DeviceInfo['type']): DeviceInfo {
  const r = rng(seed, `device:${role}`, 0)
  const model = r.pick(models)
  const uid = digest(seed, `device-uid:${role}`, 0).toString('hex').slice(0, 8)
  return { role, type, uid, ...model }
}

const profiles = new Map<string, UserProfile>()

/** The stable traits of the user with this seed, from which all of their data follows. */
export function userProfile(seed: string): UserProfile {
  return cached(profiles, seed, () => {
    const r = rng(seed, 'profile', 0)
    const home = r.pick(HOMES)
    return {
      seed,
      googleId: googleIdForSeed(seed),
      bmrKcalPerHour: quantize(55 + r.next() * 20),
      strideM: quantize(0.65 + r.next() * 0.2),
      runner: r.next() < 0.4,
      restingHeartRate: r.int(56, 68),
      weightKg: round1(55 + r.next() * 45),
      heightM: Math.round((1.55 + r.next() * 0.4) * 100) / 100,
      bodyFatPercent: round1(12 + r.next() * 20),
      weighHourUtc: r.int(6, 8),
      heightDayOffset: r.int(0, 29),
      systolic: r.int(108, 130),
      diastolic: r.int(68, 82),
      home: { lat: round6(home.lat + (r.next() - 0.5) * 0.06), lng: round6(home.lng + (r.next() - 0.5) * 0.06) },
      devices: {
        phone: device(seed, 'phone', PHONES, 'phone'),
        watch: device(seed, 'watch', WATCHES, 'watch'),
        scale: device(seed, 'scale', SCALES, 'scale'),
        bpMonitor: device(seed, 'bpMonitor', BP_MONITORS, 'unknown'),
      },
    }
  })
}

/** The user's own device that records a Fit raw type: their only source of it. */
export function recordingDevice(seed: string, fitTypeName: string): DeviceInfo {
  return userProfile(seed).devices[requireType(fitTypeName).device]
}

/** The raw source on the user's own device that recorded a type (carries model and serial). */
export function rawDataSourceId(seed: string, type: FitTypeSpec): string {
  const d = userProfile(seed).devices[type.device]
  return `raw:${type.name}:${d.packageName}:${d.manufacturer}:${d.model}:${d.uid}:${type.rawStreamName}`
}

/** The originDataSourceId on the user's aggregate points of this (raw) data type. */
export function originDataSourceId(seed: string, dataTypeName: string): string {
  return rawDataSourceId(seed, requireType(dataTypeName))
}

function requireType(dataTypeName: string): FitTypeSpec {
  const spec = fitType(dataTypeName)
  if (spec === undefined) throw new Error(`Unknown data type ${dataTypeName}`)
  return spec
}

// ---------------------------------------------------------------------------------------------
// Sleep: one session per night, keyed by the UTC day it ends on; bedtime 22:30-00:00 the evening
// before, wake-up 06:00-07:30. The session is tiled by stage segments of whole minutes.

export interface SleepSegment {
  readonly startMs: number
  readonly endMs: number
  readonly stage: number
}

export interface SleepNight {
  readonly startMs: number
  readonly endMs: number
  readonly segments: readonly SleepSegment[]
}

const SLEEP_AWAKE = 1
const SLEEP_LIGHT = 4
const SLEEP_DEEP = 5
const SLEEP_REM = 6

const nights = new Map<string, SleepNight>()

/** The sleep session that ends on the UTC day starting at `dayStartMs`. */
export function sleepNight(seed: string, dayStartMs: number): SleepNight {
  const day = floorTo(dayStartMs, DAY_MS)
  return cached(nights, `${seed}\u0000${day}`, () => {
    const r = rng(seed, 'sleep-night', day)
    const startMs = day - 90 * MINUTE_MS + r.int(0, 90) * MINUTE_MS
    const endMs = day + 6 * HOUR_MS + r.int(0, 90) * MINUTE_MS
    const segments: SleepSegment[] = []
    let t = startMs
    const add = (stage: number, minutes: number): void => {
      if (t >= endMs) return
      const end = Math.min(endMs, t + minutes * MINUTE_MS)
      segments.push({ startMs: t, endMs: end, stage })
      t = end
    }
    add(SLEEP_AWAKE, r.int(2, 10))
    for (let cycle = 0; t < endMs; cycle++) {
      add(SLEEP_LIGHT, r.int(10, 35))
      add(SLEEP_DEEP, cycle < 2 ? r.int(20, 40) : r.int(5, 20))
      add(SLEEP_LIGHT, r.int(5, 20))
      add(SLEEP_REM, r.int(5, 10 + cycle * 5))
      if (r.next() < 0.2) add(SLEEP_AWAKE, r.int(1, 5))
    }
    return { startMs, endMs, segments }
  })
}

/** The (at most two) nights that can overlap the UTC day containing t. */
function nightsAround(seed: string, t: number): SleepNight[] {
  const day = floorTo(t, DAY_MS)
  return [sleepNight(seed, day), sleepNight(seed, day + DAY_MS)]
}

function asleepAt(seed: string, t: number): boolean {
  return nightsAround(seed, t).some((n) => n.startMs <= t && t < n.endMs)
}

function overlapsSleep(seed: string, startMs: number, endMs: number): boolean {
  return nightsAround(seed, startMs).some((n) => n.startMs < endMs && startMs < n.endMs)
}

// ---------------------------------------------------------------------------------------------
// Walking and running: up to one bout per quarter hour, never during sleep. Most activity types
// (steps, distance, speed, calories, move minutes, heart points, activity segments, location) are
// derived from these bouts so that they agree with each other.

export interface StepBout {
  readonly startMs: number
  readonly endMs: number
  readonly steps: number
  /** Steps per minute. */
  readonly cadence: number
  readonly running: boolean
}

/** How likely each UTC hour of the day is to contain activity; zero through the night. */
const ACTIVITY_BY_HOUR = [0, 0, 0, 0, 0, 0, 0.3, 0.8, 0.8, 0.5, 0.5, 0.5, 0.8, 0.8, 0.5, 0.5, 0.5, 1, 1, 1, 0.5, 0.5, 0.2, 0.05] as const
const RUNNING_HOURS = new Set([6, 7, 17, 18, 19])

/**
 * The walking/running bouts that start in the UTC hour beginning at hourStartMs. An hour with a run
 * holds only that run, which keeps an hour under ~2,300 steps.
 */
export function stepBouts(seed: string, hourStartMs: number): StepBout[] {
  const hour = utcHour(hourStartMs)
  const level = ACTIVITY_BY_HOUR[hour] ?? 0
  if (level === 0) return []
  const p = userProfile(seed)
  const r = rng(seed, 'com.google.step_count.delta', hourStartMs)
  const walks: StepBout[] = []
  for (let quarter = 0; quarter < 4; quarter++) {
    // Draw everything up front so each quarter consumes the same amount of randomness.
    const active = r.next() < level * 0.9
    const offsetMin = r.int(0, 4)
    const runRoll = r.next()
    const walkMin = r.int(1, 5)
    const runMin = r.int(6, 10)
    const walkCadence = r.int(60, 115)
    const runCadence = r.int(140, 165)
    if (!active) continue
    const running = p.runner && RUNNING_HOURS.has(hour) && runRoll < 0.25
    const minutes = running ? runMin : walkMin
    const cadence = running ? runCadence : walkCadence
    const startMs = hourStartMs + (quarter * 15 + offsetMin) * MINUTE_MS
    const endMs = startMs + minutes * MINUTE_MS
    if (overlapsSleep(seed, startMs, endMs)) continue
    const bout = { startMs, endMs, steps: minutes * cadence, cadence, running }
    if (running) return [bout]
    walks.push(bout)
  }
  return walks
}

/**
 * The run that starts in the UTC hour beginning at hourStartMs, if any: the bout of stepBouts that
 * is running (an hour with a run holds only that run). Only a runner's running hours can hold one,
 * so other hours are answered without generating their bouts.
 */
export function runningBout(seed: string, hourStartMs: number): StepBout | undefined {
  if (!userProfile(seed).runner || !RUNNING_HOURS.has(utcHour(hourStartMs))) return undefined
  return stepBouts(seed, hourStartMs).find((b) => b.running)
}

const boutMinutes = (b: StepBout): number => (b.endMs - b.startMs) / MINUTE_MS

/** The energy a bout's steps take above the user's resting rate: 0.07 kcal a running step, 0.045 a walking one. */
export const boutKcal = (b: StepBout): number => b.steps * (b.running ? 0.07 : 0.045)

/** The metres a bout covers at the user's stride, as com.google.distance.delta records them (a multiple of 2^-10). */
export const boutMetres = (seed: string, b: StepBout): number => quantize(b.steps * userProfile(seed).strideM)

// ---------------------------------------------------------------------------------------------
// Per-type generators: the raw samples starting in one UTC hour.

type HourGenerator = (seed: string, hourStartMs: number) => RawSample[]

const instant = (t: number, values: number[]): RawSample => ({ startMs: t, endMs: t, values })

const GENERATORS: Record<string, HourGenerator> = {
  'com.google.step_count.delta': (seed, h) => stepBouts(seed, h).map((b) => ({ startMs: b.startMs, endMs: b.endMs, values: [b.steps] })),

  'com.google.distance.delta': (seed, h) => stepBouts(seed, h).map((b) => ({ startMs: b.startMs, endMs: b.endMs, values: [boutMetres(seed, b)] })),

  'com.google.active_minutes': (seed, h) => stepBouts(seed, h).map((b) => ({ startMs: b.startMs, endMs: b.endMs, values: [boutMinutes(b)] })),

  // Heart points: one per brisk minute, two per vigorous minute.
  'com.google.heart_minutes': (seed, h) =>
    stepBouts(seed, h)
      .filter((b) => b.cadence >= 100)
      .map((b) => ({ startMs: b.startMs, endMs: b.endMs, values: [boutMinutes(b) * (b.cadence >= 130 ? 2 : 1)] })),

  'com.google.speed': (seed, h) =>
    stepBouts(seed, h).map((b) => instant(b.startMs + boutMinutes(b) * 30_000, [quantize(boutMetres(seed, b) / (boutMinutes(b) * 60))])),

  // Basal burn in every quarter hour, plus the cost of the steps of bouts starting in it.
  'com.google.calories.expended': (seed, h) => {
    const p = userProfile(seed)
    const bouts = stepBouts(seed, h)
    const samples: RawSample[] = []
    for (let quarter = 0; quarter < 4; quarter++) {
      const startMs = h + quarter * 15 * MINUTE_MS
      const endMs = startMs + 15 * MINUTE_MS
      let kcal = p.bmrKcalPerHour / 4
      for (const b of bouts) {
        if (b.startMs >= startMs && b.startMs < endMs) kcal += boutKcal(b)
      }
      samples.push({ startMs, endMs, values: [quantize(kcal)] })
    }
    return samples
  },

  // Walking (7) and running (8) bouts, plus one sleeping (72) segment per night at bedtime.
  'com.google.activity.segment': (seed, h) => {
    const samples: RawSample[] = stepBouts(seed, h).map((b) => ({
      startMs: b.startMs,
      endMs: b.endMs,
      values: [b.running ? 8 : 7],
    }))
    for (const n of nightsAround(seed, h)) {
      if (n.startMs >= h && n.startMs < h + HOUR_MS) samples.push({ startMs: n.startMs, endMs: n.endMs, values: [72] })
    }
    return samples
  },

  'com.google.sleep.segment': (seed, h) =>
    nightsAround(seed, h)
      .flatMap((n) => n.segments)
      .filter((s) => s.startMs >= h && s.startMs < h + HOUR_MS)
      .map((s) => ({ startMs: s.startMs, endMs: s.endMs, values: [s.stage] })),

  // A reading every five minutes, except for hours the watch was off the wrist.
  'com.google.heart_rate.bpm': (seed, h) => {
    const p = userProfile(seed)
    const r = rng(seed, 'com.google.heart_rate.bpm', h)
    if (r.next() < 0.06) return []
    const bouts = stepBouts(seed, h)
    const samples: RawSample[] = []
    for (let slot = 0; slot < 12; slot++) {
      const t = h + (slot * 5 + r.int(0, 4)) * MINUTE_MS
      const noise = r.int(0, 12)
      const effort = r.int(0, 15)
      const bout = bouts.find((b) => b.startMs <= t && t < b.endMs)
      let bpm = p.restingHeartRate + (asleepAt(seed, t) ? Math.floor(noise / 3) - 1 : 6 + noise)
      if (bout !== undefined) bpm += (bout.running ? 70 : 25) + effort
      samples.push(instant(t, [bpm]))
    }
    return samples
  },

  // Most mornings, once, at the user's weigh-in hour.
  'com.google.weight': (seed, h) => weighIn(seed, h),

  'com.google.body.fat.percentage': (seed, h) => {
    const weight = weighIn(seed, h)[0]
    if (weight === undefined) return []
    const r = rng(seed, 'com.google.body.fat.percentage', h)
    if (r.next() >= 0.6) return []
    return [instant(weight.startMs, [round1(userProfile(seed).bodyFatPercent + (r.next() - 0.5))])]
  },

  'com.google.height': (seed, h) => {
    const p = userProfile(seed)
    if (utcHour(h) !== p.weighHourUtc || Math.floor(h / DAY_MS) % 30 !== p.heightDayOffset) return []
    const r = rng(seed, 'com.google.height', h)
    return [instant(h + r.int(0, 59) * MINUTE_MS, [p.heightM])]
  },

  // Half of the mornings (07 UTC) and evenings (20 UTC).
  'com.google.blood_pressure': (seed, h) => {
    if (utcHour(h) !== 7 && utcHour(h) !== 20) return []
    const p = userProfile(seed)
    const r = rng(seed, 'com.google.blood_pressure', h)
    if (r.next() >= 0.5) return []
    const t = h + r.int(0, 59) * MINUTE_MS
    return [instant(t, [p.systolic + r.int(-8, 12), p.diastolic + r.int(-6, 8)])]
  },

  // The watch measures SpO2 twice an hour while the user sleeps.
  'com.google.oxygen_saturation': (seed, h) => {
    const r = rng(seed, 'com.google.oxygen_saturation', h)
    const samples: RawSample[] = []
    for (let slot = 0; slot < 2; slot++) {
      const t = h + (slot * 30 + r.int(0, 4)) * MINUTE_MS
      const spo2 = r.int(93, 99)
      if (asleepAt(seed, t)) samples.push(instant(t, [spo2, 0]))
    }
    return samples
  },

  // GPS fixes at the start, middle and end of each bout, a short walk from home.
  'com.google.location.sample': (seed, h) => {
    const p = userProfile(seed)
    const r = rng(seed, 'com.google.location.sample', h)
    const samples: RawSample[] = []
    for (const b of stepBouts(seed, h)) {
      let lat = p.home.lat + (r.next() - 0.5) * 0.02
      let lng = p.home.lng + (r.next() - 0.5) * 0.02
      for (const t of [b.startMs, b.startMs + boutMinutes(b) * 30_000, b.endMs]) {
        lat += (r.next() - 0.5) * 0.002
        lng += (r.next() - 0.5) * 0.002
        samples.push(instant(t, [round6(lat), round6(lng), r.int(4, 25)]))
      }
    }
    return samples
  },
}

function weighIn(seed: string, h: number): RawSample[] {
  const p = userProfile(seed)
  if (utcHour(h) !== p.weighHourUtc) return []
  const r = rng(seed, 'com.google.weight', h)
  if (r.next() >= 0.8) return []
  const t = h + r.int(0, 59) * MINUTE_MS
  const day = Math.floor(h / DAY_MS)
  const kg = round1(p.weightKg + 1.5 * Math.sin((2 * Math.PI * day) / 60) + (r.next() - 0.5) * 0.8)
  return [instant(t, [kg])]
}

/**
 * The raw samples of a type that start in [startMs, endMs) and have ended by nowMs, in start order.
 */
export function rawSamples(seed: string, dataTypeName: string, startMs: number, endMs: number, nowMs: number = Number.POSITIVE_INFINITY): RawSample[] {
  const generate = GENERATORS[requireType(dataTypeName).name]
  if (generate === undefined) throw new Error(`No generator for ${dataTypeName}`)
  const samples: RawSample[] = []
  for (let h = floorTo(startMs, HOUR_MS); h < endMs; h += HOUR_MS) {
    for (const s of generate(seed, h)) {
      if (s.startMs >= startMs && s.startMs < endMs && s.endMs <= nowMs) samples.push(s)
    }
  }
  // Stable sort: generators already emit in start order within an hour except for sleep/activity.
  return samples.sort((a, b) => a.startMs - b.startMs)
}

// ---------------------------------------------------------------------------------------------
// Aggregation: how Google turns the raw samples of one bucket into summary points.

const int = (v: number): FitValue => ({ intVal: v, mapVal: [] })
const fp = (v: number): FitValue => ({ fpVal: v, mapVal: [] })
const nanos = (ms: number): string => `${ms}000000`

function point(type: FitTypeSpec, origin: string, samples: readonly RawSample[], value: FitValue[]): AggregatePoint {
  let start = Number.POSITIVE_INFINITY
  let end = Number.NEGATIVE_INFINITY
  for (const s of samples) {
    start = Math.min(start, s.startMs)
    end = Math.max(end, s.endMs)
  }
  return {
    startTimeNanos: nanos(start),
    endTimeNanos: nanos(end),
    dataTypeName: type.aggregateName,
    originDataSourceId: origin,
    value,
    modifiedTimeMillis: String(end),
  }
}

function sum(samples: readonly RawSample[], index = 0): number {
  let total = 0
  for (const s of samples) total += s.values[index] ?? 0
  return total
}

/** [average, max, min] of one value across samples (plain mean over readings, as Google does). */
function avgMaxMin(samples: readonly RawSample[], index = 0): [number, number, number] {
  let max = Number.NEGATIVE_INFINITY
  let min = Number.POSITIVE_INFINITY
  for (const s of samples) {
    const v = s.values[index] ?? 0
    max = Math.max(max, v)
    min = Math.min(min, v)
  }
  return [sum(samples, index) / samples.length, max, min]
}

/**
 * The aggregate points of one bucket, given the raw samples that start in it (in start order).
 * Exported so callers holding raw samples can aggregate without regenerating them.
 */
export function aggregateSamples(seed: string, dataTypeName: string, samples: readonly RawSample[]): AggregatePoint[] {
  const type = requireType(dataTypeName)
  if (samples.length === 0) return []
  const origin = rawDataSourceId(seed, type)
  switch (type.aggregateName) {
    case 'com.google.step_count.delta':
    case 'com.google.active_minutes':
      return [point(type, origin, samples, [int(sum(samples))])]
    case 'com.google.calories.expended':
    case 'com.google.distance.delta':
      return [point(type, origin, samples, [fp(sum(samples))])]
    case 'com.google.heart_minutes.summary': {
      let minutes = 0
      for (const s of samples) minutes += (s.endMs - s.startMs) / MINUTE_MS
      return [point(type, origin, samples, [fp(sum(samples)), int(minutes)])]
    }
    case 'com.google.blood_pressure.summary':
      return [point(type, origin, samples, [...avgMaxMin(samples, 0).map(fp), ...avgMaxMin(samples, 1).map(fp)])]
    case 'com.google.location.bounding_box': {
      const [, maxLat, minLat] = avgMaxMin(samples, 0)
      const [, maxLng, minLng] = avgMaxMin(samples, 1)
      return [point(type, origin, samples, [fp(minLat), fp(minLng), fp(maxLat), fp(maxLng)])]
    }
    case 'com.google.activity.summary': {
      const byActivity = new Map<number, RawSample[]>()
      for (const s of samples) {
        const activity = s.values[0] ?? 0
        const group = byActivity.get(activity) ?? []
        group.push(s)
        byActivity.set(activity, group)
      }
      return [...byActivity.entries()]
        .sort(([a], [b]) => a - b)
        .map(([activity, group]) => {
          let duration = 0
          for (const s of group) duration += s.endMs - s.startMs
          return point(type, origin, group, [int(activity), int(duration), int(group.length)])
        })
    }
    case 'com.google.sleep.segment':
      return samples.map((s) => point(type, origin, [s], [int(s.values[0] ?? 0)]))
    default:
      // Every remaining type is a single-reading summary: weight, height, body fat, speed, heart rate, SpO2.
      return [point(type, origin, samples, avgMaxMin(samples).map(fp))]
  }
}

/**
 * Exactly the points the fake returns for `dataTypeName` (the RAW type named in aggregateBy) in the
 * bucket [bucketStartMs, bucketEndMs), when the server's clock reads nowMs.
 */
export function syntheticBucket(
  seed: string,
  dataTypeName: string,
  bucketStartMs: number,
  bucketEndMs: number,
  nowMs: number = Number.POSITIVE_INFINITY,
): AggregatePoint[] {
  return aggregateSamples(seed, dataTypeName, rawSamples(seed, dataTypeName, bucketStartMs, bucketEndMs, nowMs))
}
