import type { DataTypeKey, FitnessSample } from '@fitstream/shared'
import { APPLE_EXPORT_ENTRY, parseAppleHealthXml, type DateRange } from './apple-health.js'
import { openArchive, type ArchiveSource } from './archive.js'
import { BucketAccumulator, type TypeSummary } from './buckets.js'
import { ImportError } from './errors.js'
import { DEFAULT_LIMITS, type ImportLimits } from './limits.js'
import { TAKEOUT_FIT_ENTRY, parseTakeoutFitJson } from './takeout-fit.js'

export type ExportFormat = 'apple-health' | 'google-takeout'

export interface ImportOptions {
  /** Times records may have; a record outside refuses the import. */
  readonly dates: DateRange
  /** The bucket length samples are gathered into, on UTC boundaries (the fetcher's SYNC_BUCKET_MS; default 1 h). */
  readonly bucketMs?: number
  readonly limits?: Partial<ImportLimits>
  /** Called as the import reads: the share of the archive's data read so far (0-1) and records taken. */
  readonly onProgress?: (progress: { readonly fraction: number; readonly records: number }) => void
}

export interface ImportResult {
  readonly format: ExportFormat
  /** Every bucket found, revision 0, in time order, one at a time: carries no device, app, source or file name. */
  samples(): Iterable<FitnessSample>
  /** How many buckets `samples()` goes through (at most). */
  readonly buckets: number
  /** Per type: records read, buckets filled, and the period they cover. */
  readonly summary: Partial<Record<DataTypeKey, TypeSummary>>
  readonly records: number
  /** Records of types FitStream does not sell, left out. */
  readonly skipped: number
}

/**
 * Imports an Apple Health `export.zip` or a Google Takeout archive: finds the format from the entries'
 * names, streams the export's records through the matching parser and gathers them into the
 * fetcher's buckets. It either returns every sample or throws an ImportError: a failure part way
 * through returns nothing, so nothing of a failed import can be released.
 */
export async function importArchive(source: ArchiveSource, options: ImportOptions): Promise<ImportResult> {
  const limits: ImportLimits = { ...DEFAULT_LIMITS, ...options.limits }
  const bucketMs = options.bucketMs ?? 3_600_000
  const archive = await openArchive(source, limits)
  try {
    const apple = archive.entries.filter((e) => APPLE_EXPORT_ENTRY.test(e.name))
    const takeout = archive.entries.filter((e) => TAKEOUT_FIT_ENTRY.test(e.name))
    const chosen = apple.length > 0 ? apple.slice(0, 1) : takeout
    if (chosen.length === 0) {
      throw new ImportError(
        'FST_ERR_IMPORT_UNKNOWN_FORMAT',
        'the archive holds neither an Apple Health export (apple_health_export/export.xml) nor Google Fit data from Takeout (Takeout/Fit/...)',
      )
    }
    const total = chosen.reduce((n, e) => n + e.uncompressedSize, 0)
    if (total > limits.maxInflatedBytes)
      throw new ImportError('FST_ERR_IMPORT_ZIP_BOMB', `the export's files add up to more than ${limits.maxInflatedBytes} bytes`)

    const into = new BucketAccumulator(bucketMs, limits.maxBuckets)
    let done = 0
    let records = 0
    let skipped = 0
    const progress = (bytes: number): void => options.onProgress?.({ fraction: total === 0 ? 1 : Math.min(1, bytes / total), records })
    for (const entry of chosen) {
      let read = 0
      const counted = (async function* () {
        for await (const chunk of archive.read(entry)) {
          read += chunk.length
          progress(done + read)
          yield chunk
        }
      })()
      const parse = { dates: options.dates, maxElementBytes: limits.maxElementBytes }
      const stats =
        apple.length > 0
          ? await parseAppleHealthXml(counted, into, { ...parse, onRecords: (n) => (records = n) })
          : await parseTakeoutFitJson(counted, into, parse)
      if (apple.length === 0) records += stats.records
      skipped += stats.skipped
      done += entry.uncompressedSize
    }
    progress(total)
    return {
      format: apple.length > 0 ? 'apple-health' : 'google-takeout',
      samples: () => into.samples(),
      buckets: into.size,
      summary: into.summary(),
      records,
      skipped,
    }
  } finally {
    archive.close()
  }
}
