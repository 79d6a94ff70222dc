import type { DataTypeKey } from '@fitstream/shared/data-types'

/** What an import accepts; every limit is checked while the data streams, never after. */
export interface ImportLimits {
  /** Largest upload accepted, in bytes (default 2 GiB). */
  readonly maxUploadBytes: number
  /** Largest total of inflated bytes read from the archive's entries (default 8 GiB). */
  readonly maxInflatedBytes: number
  /** Highest ratio of inflated to compressed bytes for one entry (default 100; XML exports run 10-30). */
  readonly maxRatio: number
  /** Most entries the archive's central directory may list (default 200,000). */
  readonly maxEntries: number
  /** Longest run of XML or JSON without a record boundary, in bytes (default 1 MiB). */
  readonly maxElementBytes: number
  /** Most distinct (type, bucket) cells one import may produce (default 2,000,000, some 20 years of hours). */
  readonly maxBuckets: number
}

export const DEFAULT_LIMITS: ImportLimits = Object.freeze({
  maxUploadBytes: 2 * 1024 ** 3,
  maxInflatedBytes: 8 * 1024 ** 3,
  maxRatio: 100,
  maxEntries: 200_000,
  maxElementBytes: 1024 ** 2,
  maxBuckets: 2_000_000,
})

/** Plausible ranges in FitStream's units, whatever the export: a value outside is a wrong unit or a broken record, and refuses the import. */
export const PLAUSIBLE: Partial<Record<DataTypeKey, readonly [number, number]>> = {
  steps: [0, 200_000],
  calories: [0, 50_000],
  distance: [0, 1_000_000],
  active_minutes: [0, 1_440],
  heart_rate: [20, 300],
  weight: [1, 700],
  height: [0.3, 3],
  body_fat: [1, 80],
  oxygen_saturation: [50, 100],
}
