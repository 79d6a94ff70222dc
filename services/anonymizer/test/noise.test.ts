import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { bernoulliExp, discreteLaplace, discreteLaplaceVariance, fromUnits, noisyUnits, prfRandomSource, toUnits } from '../src/noise.js'
import { seededSource } from './support.js'

const N = 40_000

/** Pearson's chi-square statistic of draws against a pmf over bins |z| ≤ maxBin, with both tails pooled. */
function chiSquare(draws: readonly number[], pmf: (z: number) => number, maxBin: number): { statistic: number; df: number } {
  const observed = new Map<number, number>()
  for (const z of draws) {
    const bin = Math.max(-maxBin - 1, Math.min(maxBin + 1, z))
    observed.set(bin, (observed.get(bin) ?? 0) + 1)
  }
  let inside = 0
  let statistic = 0
  for (let z = -maxBin; z <= maxBin; z++) {
    const expected = pmf(z) * draws.length
    inside += pmf(z)
    statistic += ((observed.get(z) ?? 0) - expected) ** 2 / expected
  }
  const tail = ((1 - inside) / 2) * draws.length
  for (const bin of [-maxBin - 1, maxBin + 1]) statistic += ((observed.get(bin) ?? 0) - tail) ** 2 / tail
  return { statistic, df: 2 * maxBin + 2 }
}

describe('discrete Laplace noise', () => {
  it.each([
    [1, 1],
    [3, 1],
    [2.5, 2],
  ])('matches its declared scale %d (seeded source %d): mean, variance, P(0) and the whole distribution', (scale, seed) => {
    const rng = seededSource(seed)
    // scale = t/s with s = one million micro-units, as the mechanism uses it.
    const draws = Array.from({ length: N }, () => discreteLaplace(1_000_000, Math.round(scale * 1_000_000), rng))
    const a = Math.exp(-1 / scale)
    const pmf = (z: number): number => ((1 - a) / (1 + a)) * a ** Math.abs(z)
    const variance = discreteLaplaceVariance(scale)
    const mean = draws.reduce((x, y) => x + y, 0) / N
    const empiricalVariance = draws.reduce((x, y) => x + (y - mean) ** 2, 0) / (N - 1)
    // Tolerances are about four standard errors: a correct sampler passes, a wrong scale does not.
    expect(Math.abs(mean)).toBeLessThan(4 * Math.sqrt(variance / N))
    expect(Math.abs(empiricalVariance / variance - 1)).toBeLessThan(4 * Math.sqrt(5 / N))
    expect(draws.filter((z) => z === 0).length / N).toBeCloseTo(pmf(0), 2)
    const maxBin = Math.ceil(4 * scale)
    const { statistic, df } = chiSquare(draws, pmf, maxBin)
    // The 0.999 quantile of chi-square is below df + 4.5·sqrt(2·df) for these df.
    expect(statistic).toBeLessThan(df + 4.5 * Math.sqrt(2 * df))
    // And it would catch a sampler off by 20% in scale.
    const wrong = Math.exp(-1 / (scale * 1.2))
    expect(chiSquare(draws, (z) => ((1 - wrong) / (1 + wrong)) * wrong ** Math.abs(z), maxBin).statistic).toBeGreaterThan(df + 4.5 * Math.sqrt(2 * df))
  })

  it('scales with sensitivity / epsilon through the grid mechanism', () => {
    const rng = seededSource(7)
    const draws = Array.from({ length: N }, () => noisyUnits(1000, { sensitivityUnits: 2, epsilon: 0.5 }, rng) - 1000)
    const variance = discreteLaplaceVariance(4)
    const empirical = draws.reduce((x, y) => x + y * y, 0) / N
    expect(Math.abs(empirical / variance - 1)).toBeLessThan(4 * Math.sqrt(5 / N))
  })

  it('draws Bernoulli(exp(-γ)) exactly from integer trials', () => {
    const rng = seededSource(11)
    for (const [num, den] of [
      [1, 2],
      [3, 2],
      [5, 1],
    ] as const) {
      const hits = Array.from({ length: N }, () => bernoulliExp(num, den, rng)).filter(Boolean).length
      const p = Math.exp(-num / den)
      expect(Math.abs(hits / N - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / N))
    }
  })

  it('puts every output on the grid, with no floating-point tail to leak through', () => {
    const rng = seededSource(3)
    for (const grid of [0.1, 0.5, 10, 0.01]) {
      for (let i = 0; i < 500; i++) {
        const value = fromUnits(noisyUnits(toUnits(72.34, grid), { sensitivityUnits: 5, epsilon: 1 }, rng), grid)
        expect(Number.isInteger(Math.round(value / grid))).toBe(true)
        expect(Math.abs(value / grid - Math.round(value / grid))).toBeLessThan(1e-9)
        expect(String(value)).not.toMatch(/\d{8,}/)
      }
    }
  })

  it('draws from a keyed PRF: the same label gives the same noise, another label or key other noise', () => {
    const key = randomBytes(32)
    const draw = (k: Buffer, label: string) =>
      Array.from(
        { length: 20 },
        (
          (rng) => () =>
            discreteLaplace(1_000_000, 5_000_000, rng)
        )(prfRandomSource(k, label)),
      )
    expect(draw(key, 'record|a|0')).toEqual(draw(key, 'record|a|0'))
    expect(draw(key, 'record|a|1')).not.toEqual(draw(key, 'record|a|0'))
    expect(draw(randomBytes(32), 'record|a|0')).not.toEqual(draw(key, 'record|a|0'))
  })

  it('refuses parameters it can not sample exactly', () => {
    expect(() => noisyUnits(1, { sensitivityUnits: 1, epsilon: 1e-9 }, seededSource(1))).toThrow(/micro-epsilon/)
    expect(() => discreteLaplace(0, 1, seededSource(1))).toThrow(/FST_ERR|whole/)
  })
})
