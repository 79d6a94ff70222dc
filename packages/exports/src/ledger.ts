import { createHash } from 'node:crypto'
import type { FitnessSample } from '@fitstream/shared'

/** What a person's imports last passed on for one (type, bucket): its content's digest and revision. */
export interface LedgerEntry {
  readonly digest: string
  readonly revision: number
}

/** The ledger's key for a sample: its type and bucket start. */
export const ledgerKey = (sample: Pick<FitnessSample, 'type' | 'startMs'>): string => `${sample.type}:${sample.startMs}`

export function encodeLedgerEntry(entry: LedgerEntry): string {
  return `${entry.digest}:${entry.revision}`
}

export function decodeLedgerEntry(text: string): LedgerEntry | undefined {
  const [digest, revision] = text.split(':')
  return digest === undefined || revision === undefined || !/^\d+$/.test(revision) ? undefined : { digest, revision: Number(revision) }
}

export interface ImportDecision {
  /** Samples to pass on: new buckets at revision 0, changed ones at the next revision. */
  readonly release: FitnessSample[]
  /** Buckets passed on before with exactly these values. */
  readonly unchanged: number
  /** Buckets in the period the Google API covers for this person, left to it. */
  readonly leftToApi: number
  /** Ledger entries to write once the release has been handed on. */
  readonly next: ReadonlyMap<string, LedgerEntry>
}

/**
 * One record, one release. A bucket the person's imports passed on before with the same values is
 * not passed on again (importing a file twice releases nothing new); a bucket whose values changed
 * goes on at the next revision, so the anonymiser's record of the same id supersedes the earlier
 * one. Where the person's Google data is synced too, the API is the one source from `apiFromMs`
 * (the start of their backfill) on: imported buckets that end after it are left out, so no period is
 * released from both sources.
 */
export function decideRelease(samples: readonly FitnessSample[], previous: ReadonlyMap<string, LedgerEntry>, apiFromMs: number | undefined): ImportDecision {
  const release: FitnessSample[] = []
  const next = new Map<string, LedgerEntry>()
  let unchanged = 0
  let leftToApi = 0
  for (const sample of samples) {
    if (apiFromMs !== undefined && sample.endMs > apiFromMs) {
      leftToApi++
      continue
    }
    const key = ledgerKey(sample)
    const digest = digestOf(sample)
    const seen = previous.get(key)
    if (seen?.digest === digest) {
      unchanged++
      continue
    }
    const revision = seen === undefined ? 0 : seen.revision + 1
    release.push({ ...sample, revision })
    next.set(key, { digest, revision })
  }
  return { release, unchanged, leftToApi, next }
}

function digestOf(sample: FitnessSample): string {
  const values = Object.keys(sample.values)
    .sort()
    .map((name) => `${name}=${sample.values[name]}`)
    .join(',')
  return createHash('sha256').update(`${sample.endMs}|${sample.unit}|${values}`).digest('base64url').slice(0, 12)
}
