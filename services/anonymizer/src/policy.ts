import { readFileSync } from 'node:fs'
import { dirname, extname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { DATA_TYPES, dataType, dataTypeKeySchema, type DataTypeKey } from '@fitstream/shared'
import { PolicyError } from './errors.js'
import { PERIOD_UNITS, TIME_UNITS, windowsPerPeriod, type PeriodUnit, type TimeUnit } from './time-windows.js'

/** The policy that ships with FitStream, used when ANONYMIZER_POLICY_FILE is not set. */
export const DEFAULT_POLICY_FILE = fileURLToPath(new URL('../policies/default.yaml', import.meta.url))

/**
 * Limits of the exact noise sampler: epsilon is handled in micro-units, and a scale's numerator
 * (sensitivity in grid units × 10^6) must leave room below the 2^48 uniform range.
 */
const MIN_EPSILON_SHARE = 1e-4
const MAX_SENSITIVITY_UNITS = 1e7

const interval = z.tuple([z.number(), z.number()]).refine(([lo, hi]) => lo < hi, { message: 'clamp must be [low, high] with low < high' })
const ascending = z
  .array(z.number())
  .min(2)
  .refine((edges) => edges.every((edge, i) => i === 0 || edge > edges[i - 1]!), { message: 'band edges must be strictly ascending' })

/**
 * How one value field is generalised. Applied in this order: clamp (values outside are top- or
 * bottom-coded to the bound), then bands (a value becomes the lower edge of its band) or rounding
 * to a multiple of `round`.
 */
const fieldRule = z
  .object({
    /** Top and bottom coding: [low, high]. Required wherever noise is added (it bounds the sensitivity). */
    clamp: interval.optional(),
    /** Snap to a multiple of this (e.g. 10 steps, 0.5 kg); also the grid noise is drawn on. */
    round: z.number().positive().optional(),
    /** Release only the lower edge of the band a value falls in. */
    bands: ascending.optional(),
  })
  .strict()

/** A cohort field: each person's contribution to a cell is clamped, so one person moves a mean only so far. */
const cohortFieldRule = z.object({ clamp: interval, round: z.number().positive().optional() }).strict()

const individualRule = z
  .object({
    /**
     * Who gets individual records: `opt-in` (default), only people who opted in to selling this type
     * as individual records; `with-type`, everyone who sells the type (for development and tests).
     */
    consent: z.enum(['opt-in', 'with-type']).default('opt-in'),
    /** Released records cover whole UTC units of this; what falls in one is combined (default hour). */
    granularity: z.enum(TIME_UNITS).default('hour'),
    /** The allow-list: only these fields are released; any other field is dropped. */
    fields: z.record(z.string(), fieldRule).default({}),
    /** Noise on every released value; each record then costs this much of the person's budget. */
    noise: z.object({ epsilon: z.number().positive() }).strict().optional(),
  })
  .strict()

const cohortRule = z
  .object({
    /** One cell per UTC window of this (default day). */
    window: z.enum(TIME_UNITS).default('day'),
    /** Noise for each released cell, split evenly over its contributor count and fields; charged to every contributor. */
    epsilon: z.number().positive().optional(),
    /** The allow-list of fields released as means per contributor. */
    fields: z.record(z.string(), cohortFieldRule).default({}),
    /** Split a cell by the band a contributor's own value falls in, e.g. weight bands. */
    bandBy: z.object({ field: z.string(), edges: ascending }).strict().optional(),
  })
  .strict()

const typeRule = z
  .object({
    /** `individual`: pseudonymous records; `cohort`: k-anonymous aggregates only; `both`; `drop`: nothing. */
    release: z.enum(['individual', 'cohort', 'both', 'drop']),
    individual: individualRule.optional(),
    cohort: cohortRule.optional(),
  })
  .strict()

const privacyZone = z
  .object({
    name: z.string().max(64).optional(),
    lat: z.number().min(-90).max(90),
    lng: z.number().min(-180).max(180),
    radiusMetres: z.number().positive(),
  })
  .strict()

export const policySchema = z
  .object({
    version: z.literal(1),
    pseudonym: z
      .object({
        /** Keyed HMAC-SHA256 of the user id and epoch; the only scheme (a plain hash can be reversed by guessing ids). */
        scheme: z.literal('hmac-sha256'),
        /** How often pseudonyms change (default month). */
        epoch: z.enum(PERIOD_UNITS).default('month'),
      })
      .strict(),
    budget: z
      .object({
        /** The period a budget covers; a release is charged to the period its data falls in (default month). */
        period: z.enum(PERIOD_UNITS).default('month'),
        /** Total epsilon one person may spend per period. */
        epsilon: z.number().positive(),
        /** How long a period's ledger is kept for the person's privacy report (default 400 days). */
        retentionDays: z.number().int().positive().default(400),
      })
      .strict(),
    cohorts: z
      .object({
        /** A cell is released only when at least k distinct people contributed, and its noisy count clears k plus a margin. */
        k: z.number().int().min(2),
        /**
         * Per cell: the most one person can raise the chance that a cell appears at all (DP partition
         * selection). It sets the margin above k the noisy count must clear (default 1e-9).
         */
        delta: z.number().gt(0).max(1e-3).default(1e-9),
        /** A window is held open this long after it ends, for late data; then released or suppressed (default 48). */
        graceHours: z.number().int().min(0).default(48),
        /** How often windows are checked for closing (default 300). */
        closeEverySeconds: z.number().int().positive().default(300),
        /**
         * History cohorts: data for a window whose cell has already closed (an imported export's past, a
         * backfill) goes to back-dated cells of its own, one per type, window and batch, each released once
         * when its batch closes; a person is counted in one cell per type and window, live or history.
         * Without this section such data is late and dropped from cohorts.
         */
        history: z
          .object({
            /** How many days a batch collects history contributions before its cells close and are released (default 7). */
            batchDays: z.number().int().min(1).max(31).default(7),
          })
          .strict()
          .optional(),
      })
      .strict(),
    location: z
      .object({
        /** Characters of geohash kept: 4 ≈ 39 km × 20 km, 5 ≈ 4.9 km × 4.9 km; never more than 6 (default 4). */
        geohashPrecision: z.number().int().min(1).max(6).default(4),
        /** Places near which no location is ever released or counted. */
        privacyZones: z.array(privacyZone).default([]),
      })
      .strict()
      .default({ geohashPrecision: 4, privacyZones: [] }),
    /** Per data type; a type not listed is dropped. */
    types: z.partialRecord(dataTypeKeySchema, typeRule),
  })
  .strict()
  .superRefine((policy, ctx) => {
    for (const [key, rule] of Object.entries(policy.types) as [DataTypeKey, z.output<typeof typeRule>][]) {
      const path = ['types', key]
      const issue = (at: (string | number)[], message: string): void => void ctx.addIssue({ code: 'custom', path: [...path, ...at], message })
      const known = dataType(key).fields.map((f) => f.name)
      const isLocation = key === 'location'
      const wantsIndividual = rule.release === 'individual' || rule.release === 'both'
      const wantsCohort = rule.release === 'cohort' || rule.release === 'both'
      if (wantsIndividual && rule.individual === undefined) issue(['individual'], `release ${rule.release} needs an individual section`)
      if (wantsCohort && rule.cohort === undefined) issue(['cohort'], `release ${rule.release} needs a cohort section`)
      if (wantsIndividual && rule.individual !== undefined) {
        const fields = Object.entries(rule.individual.fields)
        if (isLocation && fields.length > 0) issue(['individual', 'fields'], 'location releases only a truncated geohash cell; it takes no fields')
        if (!isLocation && fields.length === 0) issue(['individual', 'fields'], 'releases no field; list the fields to release, or use release: cohort or drop')
        for (const [name, field] of fields) {
          if (!known.includes(name)) issue(['individual', 'fields', name], `not a field of ${key} (${known.join(', ')})`)
          if (rule.individual.noise !== undefined && field.clamp === undefined) issue(['individual', 'fields', name, 'clamp'], 'noise needs a clamp')
          if (field.bands !== undefined && field.round !== undefined) issue(['individual', 'fields', name], 'use either bands or round, not both')
        }
        if (isLocation && rule.individual.noise !== undefined) issue(['individual', 'noise'], 'location takes no noise; it is generalised to a geohash cell')
        if ((rule.individual.noise?.epsilon ?? 0) > policy.budget.epsilon) issue(['individual', 'noise', 'epsilon'], 'exceeds the whole budget')
        if (rule.individual.noise !== undefined && fields.length > 0) {
          const share = rule.individual.noise.epsilon / fields.length
          if (share < MIN_EPSILON_SHARE) issue(['individual', 'noise', 'epsilon'], `too small: each field gets ${share}, below ${MIN_EPSILON_SHARE}`)
          for (const [name, field] of fields) {
            const units = field.clamp === undefined ? 0 : (field.clamp[1] - field.clamp[0]) / (field.round ?? 0.1)
            if (units > MAX_SENSITIVITY_UNITS)
              issue(['individual', 'fields', name], 'clamp is too wide for its rounding step to draw exact noise; use a coarser round')
          }
        }
      }
      if (wantsCohort && rule.cohort !== undefined) {
        const fields = Object.keys(rule.cohort.fields)
        if (isLocation && fields.length > 0) issue(['cohort', 'fields'], 'location cohorts count people per geohash cell; they take no fields')
        if (isLocation && rule.cohort.bandBy !== undefined) issue(['cohort', 'bandBy'], 'location cohorts are banded by geohash cell already')
        if (!isLocation && fields.length === 0) issue(['cohort', 'fields'], 'releases no field; list the fields to release')
        for (const name of fields) if (!known.includes(name)) issue(['cohort', 'fields', name], `not a field of ${key} (${known.join(', ')})`)
        if (rule.cohort.bandBy !== undefined && !fields.includes(rule.cohort.bandBy.field)) {
          issue(['cohort', 'bandBy', 'field'], 'must be one of the cohort fields')
        }
        if ((rule.cohort.epsilon ?? 0) > policy.budget.epsilon) issue(['cohort', 'epsilon'], 'exceeds the whole budget')
        if (rule.cohort.epsilon !== undefined) {
          const share = rule.cohort.epsilon / (fields.length + 1)
          if (share < MIN_EPSILON_SHARE) issue(['cohort', 'epsilon'], `too small: each of count and fields gets ${share}, below ${MIN_EPSILON_SHARE}`)
          for (const [name, field] of Object.entries(rule.cohort.fields)) {
            const units = Math.max(Math.abs(field.clamp[0]), Math.abs(field.clamp[1])) / (field.round ?? 0.1)
            if (units > MAX_SENSITIVITY_UNITS)
              issue(['cohort', 'fields', name], 'clamp is too wide for its rounding step to draw exact noise; use a coarser round')
          }
        }
      }
    }
    // Every cell a person can join in a period is paid for in advance: the budget never runs out mid-period.
    const reserved = cohortReserve(policy)
    if (reserved > policy.budget.epsilon + 1e-9) {
      ctx.addIssue({
        code: 'custom',
        path: ['budget', 'epsilon'],
        message: `cohort cells a person can join in a ${policy.budget.period} cost up to ${round6(reserved)}, more than the budget; lower the cells' epsilon or raise the budget`,
      })
    }
    for (const [key, rule] of Object.entries(policy.types) as [DataTypeKey, z.output<typeof typeRule>][]) {
      const noise = rule.individual?.noise?.epsilon
      if (noise !== undefined && (rule.release === 'individual' || rule.release === 'both') && noise > policy.budget.epsilon - reserved + 1e-9) {
        ctx.addIssue({
          code: 'custom',
          path: ['types', key, 'individual', 'noise', 'epsilon'],
          message: `exceeds what the budget leaves after the cohort cells (${round6(Math.max(0, policy.budget.epsilon - reserved))})`,
        })
      }
    }
  })

/**
 * The epsilon set aside per person per budget period for cohorts: each cohort type's cell epsilon
 * times the most windows of it that start in one period.
 */
export function cohortReserve(policy: {
  readonly budget: { readonly period: PeriodUnit }
  readonly types: Readonly<
    Partial<Record<DataTypeKey, { readonly release: string; readonly cohort?: { readonly epsilon?: number; readonly window: TimeUnit } }>>
  >
}): number {
  let total = 0
  for (const rule of Object.values(policy.types)) {
    if (rule === undefined || rule.cohort === undefined || (rule.release !== 'cohort' && rule.release !== 'both')) continue
    total += (rule.cohort.epsilon ?? 0) * windowsPerPeriod(rule.cohort.window, policy.budget.period)
  }
  return total
}

function round6(value: number): number {
  return Math.round(value * 1e6) / 1e6
}

export type PrivacyPolicy = z.output<typeof policySchema>
export type TypeRule = z.output<typeof typeRule>
export type IndividualRule = z.output<typeof individualRule>
export type CohortRule = z.output<typeof cohortRule>
export type FieldRule = z.output<typeof fieldRule>
export type CohortFieldRule = z.output<typeof cohortFieldRule>
export type PrivacyZone = z.output<typeof privacyZone>

/** Parses and validates a policy document; `source` names it in errors. */
export function parsePolicy(text: string, format: 'yaml' | 'json', source: string): PrivacyPolicy {
  let document: unknown
  try {
    document = format === 'json' ? JSON.parse(text) : parseYaml(text)
  } catch (error) {
    throw new PolicyError(`privacy policy ${source} is not valid ${format.toUpperCase()}: ${(error as Error).message.split('\n')[0]}`)
  }
  const result = policySchema.safeParse(document)
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(policy)'}: ${issue.message}`)
    throw new PolicyError(`privacy policy ${source} is invalid: ${problems.join('; ')}`)
  }
  return deepFreeze(result.data)
}

/**
 * Reads a policy file; `.json` is JSON, anything else YAML. A file may start from another with
 * `extends: <path relative to it>`: its own settings are laid over that one's, object by object
 * (a list or a value replaces). Only the result is validated.
 */
export function loadPolicy(path: string): PrivacyPolicy {
  const document = readPolicyDocument(path, [])
  return parsePolicy(JSON.stringify(document), 'json', path)
}

function readPolicyDocument(path: string, seen: readonly string[]): unknown {
  if (seen.includes(path)) throw new PolicyError(`privacy policy ${path} extends itself (${[...seen, path].join(' → ')})`)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new PolicyError(`privacy policy ${path} can't be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
  const format = extname(path).toLowerCase() === '.json' ? 'json' : 'yaml'
  let document: unknown
  try {
    document = format === 'json' ? JSON.parse(text) : parseYaml(text)
  } catch (error) {
    throw new PolicyError(`privacy policy ${path} is not valid ${format.toUpperCase()}: ${(error as Error).message.split('\n')[0]}`)
  }
  if (!isObject(document) || document.extends === undefined) return document
  const { extends: base, ...own } = document
  if (typeof base !== 'string') throw new PolicyError(`privacy policy ${path} is invalid: extends: must be a file path`)
  return overlay(readPolicyDocument(resolve(dirname(path), base), [...seen, path]), own)
}

function overlay(base: unknown, over: unknown): unknown {
  if (!isObject(base) || !isObject(over)) return over
  const merged: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(over)) merged[key] = key in base ? overlay(base[key], value) : value
  return merged
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** How each catalogue type is released under a policy, for the start-up log and documentation. */
export function describePolicy(policy: PrivacyPolicy): Record<string, string> {
  return Object.fromEntries(DATA_TYPES.map((spec) => [spec.key, policy.types[spec.key]?.release ?? 'drop']))
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const inner of Object.values(value)) deepFreeze(inner)
  }
  return value
}
