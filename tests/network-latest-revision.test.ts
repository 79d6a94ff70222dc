import { describe, expect, it } from 'vitest'
import { LatestRevisions } from '../examples/buyer/latest-revision.mjs'

describe("the buyer's highest-revision rule", () => {
  it('keeps a record once, takes a correction, and ignores copies and older revisions', () => {
    const latest = new LatestRevisions()
    const stream = '0xabc/fitness/steps'
    expect(latest.accept(stream, { id: 'r1', revision: 0 })).toBe(true)
    expect(latest.accept(stream, { id: 'r1', revision: 0 })).toBe(false)
    expect(latest.accept(stream, { id: 'r1', revision: 2 })).toBe(true)
    expect(latest.accept(stream, { id: 'r1', revision: 1 })).toBe(false)
    expect(latest.highest(stream, 'r1')).toBe(2)
  })

  it('keeps streams apart, and treats a cohort record (no revision) as revision 0', () => {
    const latest = new LatestRevisions()
    expect(latest.accept('0xabc/fitness/steps/cohort', { id: 'c1' })).toBe(true)
    expect(latest.accept('0xabc/fitness/steps/cohort', { id: 'c1' })).toBe(false)
    expect(latest.accept('0xabc/fitness/heart_rate/cohort', { id: 'c1' })).toBe(true)
  })
})
