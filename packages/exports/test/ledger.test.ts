import { describe, expect, it } from 'vitest'
import type { FitnessSample } from '@fitstream/shared'
import { decideRelease, decodeLedgerEntry, encodeLedgerEntry, type LedgerEntry } from '../src/index.js'

const H = 3_600_000
const T0 = Date.UTC(2026, 10, 30, 6)
const steps = (hour: number, count: number): FitnessSample => ({
  type: 'steps',
  startMs: T0 + hour * H,
  endMs: T0 + (hour + 1) * H,
  values: { count },
  unit: 'steps',
  revision: 0,
})

function apply(previous: Map<string, LedgerEntry>, next: ReadonlyMap<string, LedgerEntry>): Map<string, LedgerEntry> {
  // As the store does: through its text form.
  for (const [key, entry] of next) previous.set(key, decodeLedgerEntry(encodeLedgerEntry(entry))!)
  return previous
}

describe('one record, one release', () => {
  it('releases an export once, however often it is imported', () => {
    const samples = [steps(0, 500), steps(1, 300)]
    const first = decideRelease(samples, new Map(), undefined)
    expect(first.release).toEqual(samples)
    const ledger = apply(new Map(), first.next)
    const again = decideRelease(samples, ledger, undefined)
    expect(again.release).toEqual([])
    expect(again.unchanged).toBe(2)
  })

  it('releases a changed bucket as the next revision of the same record, and only that one', () => {
    let ledger = apply(new Map(), decideRelease([steps(0, 500), steps(1, 300)], new Map(), undefined).next)
    const second = decideRelease([steps(0, 500), steps(1, 350)], ledger, undefined)
    expect(second.release).toEqual([{ ...steps(1, 350), revision: 1 }])
    ledger = apply(ledger, second.next)
    expect(decideRelease([steps(1, 300)], ledger, undefined).release).toEqual([{ ...steps(1, 300), revision: 2 }])
  })

  it('leaves to the Google API every bucket that ends after the start of the person\u2019s Google history', () => {
    const decision = decideRelease([steps(0, 500), steps(1, 300), steps(2, 100)], new Map(), T0 + 2 * H)
    expect(decision.release.map((s) => s.startMs)).toEqual([T0, T0 + H])
    expect(decision.leftToApi).toBe(1)
  })
})
