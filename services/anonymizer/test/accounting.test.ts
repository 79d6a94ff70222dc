import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { policyCost, releaseThreshold, renderPolicyCost } from '../src/accounting.js'
import { samplerParameters, thresholdMargin } from '../src/noise.js'
import { cohortReserve } from '../src/policy.js'
import { defaultPolicy } from './support.js'

const PRIVACY_MD = new URL('../../../PRIVACY.md', import.meta.url)

/** A Markdown table or line with its padding and rule widths as Prettier may have laid them out, reduced to its content. */
const normalise = (text: string): string[] =>
  text
    .split('\n')
    .map((line) =>
      line.trim().startsWith('|')
        ? line
            .split('|')
            .map((cell) => cell.trim().replace(/^-{3,}$/, '---'))
            .join('|')
        : line.trim(),
    )
    .filter((line) => line !== '')

const SUPERSCRIPT: Readonly<Record<string, string>> = { '-': '⁻', 0: '⁰', 1: '¹', 2: '²', 3: '³', 4: '⁴', 5: '⁵', 6: '⁶', 7: '⁷', 8: '⁸', 9: '⁹' }
/** 3.31e-7 as PRIVACY.md writes it: `3.3 × 10⁻⁷`. */
const scientific = (value: number): string => {
  const [mantissa, exponent] = value.toExponential(1).split('e') as [string, string]
  return `${mantissa} × 10${[...String(Number(exponent))].map((c) => SUPERSCRIPT[c]).join('')}`
}

describe('what the default policy costs a person', () => {
  it('is stated in PRIVACY.md exactly as computed from the policy', () => {
    const text = readFileSync(PRIVACY_MD, 'utf8')
    const block = /<!-- privacy-cost:start -->([\s\S]*?)<!-- privacy-cost:end -->/.exec(text)
    expect(block, 'PRIVACY.md has no privacy-cost block').not.toBeNull()
    const cost = policyCost(defaultPolicy())
    expect(normalise(block![1]!)).toEqual(normalise(renderPolicyCost(cost)))
    // The plain-words summary at the top quotes the same figures, rounded.
    const plain = text.replace(/\s+/g, ' ')
    const eps = (value: number): number => Math.round(value * 1e6) / 1e6
    expect(plain).toContain(
      `at most epsilon ${eps(cost.epsilonPerPeriod)} and delta ${scientific(cost.deltaPerPeriod)} a month, ${eps(cost.epsilonPerYear)} and ${scientific(cost.deltaPerYear)} a year`,
    )
  })

  it('fits every cohort cell a person can join in a month within the monthly budget', () => {
    const policy = defaultPolicy()
    const cost = policyCost(policy)
    expect(cost.epsilonPerPeriod).toBeCloseTo(cohortReserve(policy), 9)
    expect(cost.epsilonPerPeriod).toBeLessThanOrEqual(policy.budget.epsilon)
    // A year is at most 366 days, 53 ISO weeks and 12 months of cells.
    expect(cost.epsilonPerYear).toBeLessThanOrEqual(12 * policy.budget.epsilon)
    expect(cost.deltaPerPeriod).toBeLessThan(1e-6)
  })

  it('sets each release threshold at the smallest margin whose noise tail is within delta', () => {
    const policy = defaultPolicy()
    for (const [type, rule] of Object.entries(policy.types)) {
      if (rule?.cohort?.epsilon === undefined) continue
      const epsilon = rule.cohort.epsilon / (Object.keys(rule.cohort.fields).length + 1)
      const { s, t } = samplerParameters({ sensitivityUnits: 1, epsilon })
      const a = Math.exp(-s / t)
      // P(Z >= m) = a^m / (1 + a) for the discrete Laplace the sampler draws.
      const tail = (m: number): number => a ** m / (1 + a)
      const { margin, threshold } = releaseThreshold(policy, rule.cohort)
      expect(threshold, type).toBe(policy.cohorts.k + margin)
      expect(tail(margin), type).toBeLessThanOrEqual(policy.cohorts.delta)
      expect(tail(margin - 1), type).toBeGreaterThan(policy.cohorts.delta)
    }
    expect(thresholdMargin({ sensitivityUnits: 1, epsilon: 1 }, 0.5)).toBe(1)
  })
})
