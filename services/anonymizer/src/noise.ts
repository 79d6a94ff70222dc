import { createHmac, randomInt } from 'node:crypto'
import { MICRO_EPSILON } from '@fitstream/shared'
import { NoiseParameterError } from './errors.js'

/**
 * Differential-privacy noise that can't leak through floating point. The textbook Laplace sampler
 * (`-b·sign(u)·ln(1-2|u|)` in doubles) leaves gaps and low-bit patterns in its output that reveal
 * the true value (Mironov 2012). Here every value is first put on a fixed grid of integers, the noise
 * is an exactly sampled integer from the discrete Laplace distribution (Canonne, Kamath and Steinke
 * 2020: only integer uniforms and Bernoulli trials, no logarithms), and the result is mapped back to
 * the grid. The output is a function of an integer, so its low bits carry nothing.
 */

/** Uniform integers; production draws from a keyed PRF or the OS CSPRNG, tests inject a seeded one. */
export interface RandomSource {
  /** A uniform integer in [0, maxExclusive); maxExclusive ≤ 2^48. */
  uniformInt(maxExclusive: number): number
}

const MAX_UNIFORM = 2 ** 48

/** The operating system's CSPRNG. */
export const cryptoRandomSource: RandomSource = {
  uniformInt: (maxExclusive) => randomInt(checkRange(maxExclusive)),
}

/**
 * A CSPRNG stream derived from a secret key and a label (HMAC-SHA256 in counter mode). Noise for a
 * release is drawn from the stream labelled with what is released, so the same record or cohort cell
 * released twice (a retry, a duplicate) carries the same noise: an observer can't average copies.
 */
export function prfRandomSource(key: Buffer, label: string): RandomSource {
  let counter = 0
  let block = Buffer.alloc(0)
  let offset = 0
  const next48 = (): number => {
    if (offset + 6 > block.length) {
      block = createHmac('sha256', key).update(`fitstream/noise/v1|${label}|${counter++}`).digest()
      offset = 0
    }
    const value = block.readUIntBE(offset, 6)
    offset += 6
    return value
  }
  return { uniformInt: (maxExclusive) => uniformFrom48(next48, checkRange(maxExclusive)) }
}

/** Rejection sampling: a plain modulo would favour small values. */
export function uniformFrom48(next48: () => number, maxExclusive: number): number {
  const limit = MAX_UNIFORM - (MAX_UNIFORM % maxExclusive)
  for (;;) {
    const value = next48()
    if (value < limit) return value % maxExclusive
  }
}

function checkRange(maxExclusive: number): number {
  if (!Number.isSafeInteger(maxExclusive) || maxExclusive < 1 || maxExclusive > MAX_UNIFORM) {
    throw new NoiseParameterError(`uniform range ${maxExclusive} is outside 1..2^48`)
  }
  return maxExclusive
}

/** True with probability num/den (integers, 0 ≤ num ≤ den). */
function bernoulli(num: number, den: number, rng: RandomSource): boolean {
  return rng.uniformInt(den) < num
}

/** True with probability exp(-num/den), exactly, from integer trials only. */
export function bernoulliExp(num: number, den: number, rng: RandomSource): boolean {
  let rest = num
  // exp(-γ) = exp(-1)^⌊γ⌋ · exp(-(γ - ⌊γ⌋)): peel whole units off first.
  while (rest > den) {
    if (!bernoulliExp(1, 1, rng)) return false
    rest -= den
  }
  // For γ in [0, 1]: the first k with a failed Bernoulli(γ/k) is odd with probability exp(-γ).
  let k = 1
  while (bernoulli(rest, den * k, rng)) k++
  return k % 2 === 1
}

/**
 * An integer from the discrete Laplace distribution with scale t/s: P(z) ∝ exp(-|z|·s/t).
 * Canonne, Kamath and Steinke (2020), Algorithm 2.
 */
export function discreteLaplace(s: number, t: number, rng: RandomSource): number {
  if (!Number.isSafeInteger(s) || !Number.isSafeInteger(t) || s < 1 || t < 1)
    throw new NoiseParameterError(`discrete Laplace needs whole s, t ≥ 1 (got ${s}, ${t})`)
  for (;;) {
    const u = rng.uniformInt(t)
    if (!bernoulliExp(u, t, rng)) continue
    let v = 0
    while (bernoulliExp(1, 1, rng)) v++
    const y = Math.floor((u + t * v) / s)
    const negative = rng.uniformInt(2) === 1
    if (negative && y === 0) continue
    return negative ? -y : y
  }
}

/** Variance of the discrete Laplace distribution with scale b (what the statistical test checks). */
export function discreteLaplaceVariance(scale: number): number {
  const a = Math.exp(-1 / scale)
  return (2 * a) / (1 - a) ** 2
}

export interface GridMechanism {
  /** How far one person can move the integer value, in grid units. */
  readonly sensitivityUnits: number
  readonly epsilon: number
}

/**
 * The sampler's integer parameters for a mechanism: noise of scale t/s. Epsilon is rounded down to
 * whole micro-units and sensitivity up, so the noise drawn is never less than the epsilon charged
 * promises (0.04 split six ways spends at most 0.04, not 0.040002).
 */
export function samplerParameters(mechanism: GridMechanism): { s: number; t: number } {
  const s = Math.floor(mechanism.epsilon * MICRO_EPSILON + 1e-6)
  const t = Math.max(1, Math.ceil(mechanism.sensitivityUnits)) * MICRO_EPSILON
  if (s < 1) throw new NoiseParameterError(`epsilon ${mechanism.epsilon} is below one micro-epsilon`)
  return { s, t }
}

/** Adds discrete Laplace noise of scale sensitivity/epsilon to an integer number of grid units. */
export function noisyUnits(units: number, mechanism: GridMechanism, rng: RandomSource): number {
  const { s, t } = samplerParameters(mechanism)
  return units + discreteLaplace(s, t, rng)
}

/**
 * The smallest m ≥ 1 with P(Z ≥ m) ≤ delta, Z discrete Laplace of scale t/s: P(Z ≥ m) = a^m / (1 + a),
 * a = exp(-s/t). A cell of k true people then reaches k + m on its noisy count with probability at most delta.
 */
export function thresholdMargin(mechanism: GridMechanism, delta: number): number {
  const { s, t } = samplerParameters(mechanism)
  const rate = s / t
  const a = Math.exp(-rate)
  let m = Math.max(1, Math.ceil(Math.log(1 / (delta * (1 + a))) / rate))
  // Floating-point logs can land a hair low; step up until the tail is certainly within delta.
  while (Math.exp(-rate * m) / (1 + a) > delta) m++
  return m
}

/** A value as whole grid units. */
export function toUnits(value: number, grid: number): number {
  return Math.round(value / grid)
}

/** Whole grid units back to a value, without floating-point tails such as 0.30000000000000004. */
export function fromUnits(units: number, grid: number): number {
  // Whole units on a whole grid multiply exactly (`+ 0` turns -0 into 0, as toFixed does).
  if (Number.isInteger(grid) && Number.isInteger(units)) return units * grid + 0
  let decimals = gridDecimals.get(grid)
  if (decimals === undefined) gridDecimals.set(grid, (decimals = decimalsOf(grid)))
  return Number((units * grid).toFixed(decimals))
}

/** Decimals per grid: a policy has a handful of grids. */
const gridDecimals = new Map<number, number>()

function decimalsOf(grid: number): number {
  let decimals = 0
  while (decimals < 12 && Math.abs(Math.round(grid * 10 ** decimals) - grid * 10 ** decimals) > 1e-9) decimals++
  return decimals
}
