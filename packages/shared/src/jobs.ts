import { z } from 'zod'
import { DATA_TYPE_KEYS } from './data-types.js'

/**
 * The contracts between stages: every queue's payload has a schema here, checked when a job is added
 * and again when it is processed. No payload ever carries a token.
 */

export const userIdSchema = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'must be 8-64 letters, digits, _ or -')
export const syncIdSchema = z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be 1-128 letters, digits, _, . or -')
export const dataTypeKeySchema = z.enum(DATA_TYPE_KEYS)
/**
 * The last instant a job may name. Records carry times as ISO 8601 with a four-digit year, and the
 * calendar windows around a sample (up to a month, and the cohort windows after it) must be such
 * times too; past it they would fail deep in a stage as "Invalid time value".
 */
const LAST_EPOCH_MS = Date.UTC(9999, 0, 1)
const epochMs = z.number().int().nonnegative().max(LAST_EPOCH_MS, { message: 'must be a time before 9999-01-01' })

export const timeWindowSchema = z.object({ startMs: epochMs, endMs: epochMs }).refine((w) => w.startMs < w.endMs, { message: 'startMs must be before endMs' })
export type TimeWindow = z.infer<typeof timeWindowSchema>

/** One numeric reading or aggregate of a data type over [startMs, endMs), as Google reported it. */
export const fitnessSampleSchema = z
  .object({
    type: dataTypeKeySchema,
    startMs: epochMs,
    endMs: epochMs,
    /** Named values, e.g. `{ count: 532 }` or `{ avg: 71.2, max: 98, min: 55 }`. */
    values: z.record(z.string(), z.number().finite()),
    unit: z.string(),
    /** Google's origin data source id. It names the device and app, so it never leaves the anonymiser. */
    origin: z.string().optional(),
    /** 0 the first time this interval is passed on; n when its content changed for the n-th time (late data). */
    revision: z.number().int().min(0).default(0),
  })
  .refine((s) => s.startMs <= s.endMs, { message: 'startMs must not be after endMs' })
export type FitnessSample = z.infer<typeof fitnessSampleSchema>

/** A record the anonymiser has released under the privacy policy: no identifier of the person in it. */
export const releasableRecordSchema = z.object({
  /** Stable id (the same record always has the same id), so subscribers can de-duplicate. */
  id: z.string().regex(/^[0-9a-f]{32}$/),
  type: dataTypeKeySchema,
  /** Keyed pseudonym of the user for one epoch; not linkable across epochs or to the user id. */
  pseudonym: z.string().regex(/^[0-9a-f]{32}$/),
  /** Pseudonym epoch, e.g. `2026-11`. */
  epoch: z.string(),
  /** Coarsened interval, ISO 8601 UTC. */
  start: z.iso.datetime(),
  end: z.iso.datetime(),
  values: z.record(z.string(), z.number().finite()),
  unit: z.string(),
  /** Same id with a higher revision supersedes an earlier record (late data corrected a total). */
  revision: z.number().int().min(0).default(0),
})
export type ReleasableRecord = z.infer<typeof releasableRecordSchema>

/**
 * A cohort aggregate: one data type over one window (and optional coarse band), released only when
 * at least k distinct people contributed. Carries no pseudonym.
 */
export const cohortRecordSchema = z.object({
  id: z.string().regex(/^[0-9a-f]{32}$/),
  type: dataTypeKeySchema,
  start: z.iso.datetime(),
  end: z.iso.datetime(),
  /** Optional coarse band of a quasi-identifier, e.g. `weight:70-80`. */
  band: z.string().max(64).optional(),
  /**
   * `history` for a back-dated cell: people whose data for the window came after its live cell closed
   * (none of them is in the live cell). Absent for the live cell.
   */
  release: z.literal('history').optional(),
  /** For a history cell: the day (UTC, `YYYY-MM-DD`) its batch began; one history cell per window and batch. */
  batch: z.iso.date().optional(),
  /** Distinct contributors (always >= the policy's k). */
  contributors: z.number().int().min(1),
  values: z.record(z.string(), z.number().finite()),
  unit: z.string(),
})
export type CohortRecord = z.infer<typeof cohortRecordSchema>

export const syncJobSchema = z.object({
  userId: userIdSchema,
  reason: z.enum(['schedule', 'manual', 'onboarding']).default('schedule'),
})
export type SyncJobData = z.input<typeof syncJobSchema>

export const fetchJobSchema = z.object({
  syncId: syncIdSchema,
  userId: userIdSchema,
  dataTypes: z
    .array(dataTypeKeySchema)
    .min(1)
    .refine((types) => new Set(types).size === types.length, { message: 'must not list a data type twice' }),
  window: timeWindowSchema,
  bucketMs: z.number().int().min(60_000),
  /** The user's IANA time zone: buckets of whole days are their local days; shorter ones lie on whole UTC hours. */
  timeZone: z.string().max(64).default('UTC'),
  /** How far back each sync re-reads, so late uploads are caught; the fetcher remembers this much. */
  lookbackMs: z.number().int().min(0).default(0),
  kind: z.enum(['incremental', 'backfill']).default('incremental'),
  /** For backfill: this chunk's place among the user's backfill chunks (1-based). */
  chunk: z.object({ index: z.number().int().min(1), of: z.number().int().min(1) }).optional(),
  /** Types the person opted in to selling as individual records, handed on to the anonymize job (default: none). */
  individualTypes: z.array(dataTypeKeySchema).max(DATA_TYPE_KEYS.length).optional(),
})
export type FetchJobData = z.output<typeof fetchJobSchema>

export const anonymizeJobSchema = z.object({
  syncId: syncIdSchema,
  userId: userIdSchema,
  window: timeWindowSchema,
  samples: z.array(fitnessSampleSchema).max(100_000),
  /**
   * Types the person opted in to selling as individual (pseudonymised) records; the policy releases
   * individual records of an opt-in type only for them (default: none, cohorts only).
   */
  individualTypes: z.array(dataTypeKeySchema).max(DATA_TYPE_KEYS.length).optional(),
})
export type AnonymizeJobData = z.infer<typeof anonymizeJobSchema>

/**
 * The anonymizer's erasure queue: a job asks it to remove one person's contributions from every
 * cohort cell not yet released. The producer (the token service's erasure) should give the job an
 * id that does not name the person, and `removeOnComplete`/`removeOnFail` so nothing of it stays.
 */
export const COHORT_ERASURE_QUEUE = 'anonymizer-erasure'
export const cohortErasureJobSchema = z.object({ userId: userIdSchema })
export type CohortErasureJobData = z.infer<typeof cohortErasureJobSchema>

export const publishJobSchema = z
  .object({
    syncId: syncIdSchema,
    records: z.array(releasableRecordSchema).max(100_000),
    cohorts: z.array(cohortRecordSchema).max(100_000).default([]),
  })
  .refine((job) => job.records.length + job.cohorts.length > 0, { message: 'a publish job needs at least one record or cohort' })
export type PublishJobData = z.output<typeof publishJobSchema>

/** What a stage's dead-letter queue holds: enough to understand the failure and to replay the job. */
export const deadLetterSchema = z.object({
  stage: z.string(),
  jobId: z.string(),
  jobName: z.string(),
  /** The original payload, exactly as it was added (it may be the thing that is wrong). */
  payload: z.unknown(),
  error: z.object({ code: z.string(), name: z.string(), message: z.string() }),
  permanent: z.boolean(),
  attemptsMade: z.number().int(),
  maxAttempts: z.number().int(),
  createdAt: z.iso.datetime(),
  firstAttemptAt: z.iso.datetime().nullable(),
  failedAt: z.iso.datetime(),
})
export type DeadLetter = z.infer<typeof deadLetterSchema>
