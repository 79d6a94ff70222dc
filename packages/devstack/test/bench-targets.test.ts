import { describe, expect, it } from 'vitest'
import { evaluateTargets, textTable, type TargetMeasures } from '../src/bench-targets.js'

const withinEveryTarget: TargetMeasures = {
  fitstreamCpuMsPerSync: 8,
  redisCommandsPerSync: 120,
  redisBytesPerUserAtRest: 3072,
  p99SyncToBuyerWithoutSlotWaitMs: 1999,
  peakRssMb: { 'token-service': 120, fetcher: 199.9, anonymizer: 110, publisher: 160 },
}

const metBy = (m: TargetMeasures): Record<string, boolean> => Object.fromEntries(evaluateTargets(m).map((t) => [t.target, t.met]))

describe('evaluateTargets', () => {
  it('meets every target at its limit', () => {
    expect(metBy(withinEveryTarget)).toEqual({
      'FitStream CPU per user-sync': true,
      'Redis commands per user-sync': true,
      'Redis per registered user at rest': true,
      'p99 sync to buyer less the slot wait, half throughput': true,
      'peak RSS per service': true,
    })
  })

  it('misses each target just past its limit, and only that one', () => {
    const past: [keyof TargetMeasures, unknown, string][] = [
      ['fitstreamCpuMsPerSync', 8.1, 'FitStream CPU per user-sync'],
      ['redisCommandsPerSync', 120.1, 'Redis commands per user-sync'],
      ['redisBytesPerUserAtRest', 3073, 'Redis per registered user at rest'],
      ['p99SyncToBuyerWithoutSlotWaitMs', 2000, 'p99 sync to buyer less the slot wait, half throughput'],
      ['peakRssMb', { ...withinEveryTarget.peakRssMb, publisher: 200 }, 'peak RSS per service'],
    ]
    for (const [field, value, target] of past) {
      const missed = Object.entries(metBy({ ...withinEveryTarget, [field]: value })).filter(([, met]) => !met)
      expect(missed).toEqual([[target, false]])
    }
  })

  it('counts what was not measured as missed', () => {
    const rows = evaluateTargets({ ...withinEveryTarget, p99SyncToBuyerWithoutSlotWaitMs: Number.NaN, peakRssMb: {} })
    expect(rows.filter((t) => !t.met).map((t) => [t.target, t.measured])).toEqual([
      ['p99 sync to buyer less the slot wait, half throughput', 'not measured'],
      ['peak RSS per service', 'not measured'],
    ])
  })

  it('reports the measured value beside the target, the highest RSS with its service', () => {
    const rows = evaluateTargets({ ...withinEveryTarget, fitstreamCpuMsPerSync: 23.4, redisBytesPerUserAtRest: 6144 })
    expect(rows.map((t) => [t.measured, t.limit])).toEqual([
      ['23.4 ms', '<= 8 ms'],
      ['120', '<= 120'],
      ['6.00 KB', '<= 3 KB'],
      ['1999 ms', '< 2000 ms'],
      ['199.9 MB (fetcher)', '< 200 MB'],
    ])
  })
})

describe('textTable', () => {
  it('pads each column to its widest cell', () => {
    expect(textTable(['a', 'met'], [['long cell', 'MISSED']]).split('\n')).toEqual(['a         | met', '----------|-------', 'long cell | MISSED'])
  })
})
