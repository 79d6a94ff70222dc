import { DATA_TYPES, type DataTypeKey } from '@fitstream/shared'
import { thresholdMargin } from './noise.js'
import type { CohortRule, PrivacyPolicy } from './policy.js'
import { windowsPerPeriod, type TimeUnit } from './time-windows.js'

/**
 * What a policy costs one person, computed from the policy alone: the epsilon and delta of every
 * cohort cell they can join, per budget period and per year, and the noisy count each cell must
 * clear to appear. PRIVACY.md's figures are this module's output (a test holds them equal).
 */

/** The epsilon of a cohort cell's noisy contributor count: the cell's epsilon split evenly over the count and the fields. */
export function countEpsilon(rule: CohortRule): number | undefined {
  return rule.epsilon === undefined ? undefined : rule.epsilon / (Object.keys(rule.fields).length + 1)
}

/**
 * The noisy contributor count a cell must reach to be released: k plus the margin by which discrete
 * Laplace noise of the count's scale exceeds with probability at most `cohorts.delta`. A cell with
 * k true people (k − 1 fakes and one target) then appears with probability at most delta, and one
 * with fewer never. Without noise (k-anonymity only) it is k.
 */
export function releaseThreshold(policy: PrivacyPolicy, rule: CohortRule): { readonly margin: number; readonly threshold: number } {
  const epsilon = countEpsilon(rule)
  const margin = epsilon === undefined ? 0 : thresholdMargin({ sensitivityUnits: 1, epsilon }, policy.cohorts.delta)
  return { margin, threshold: policy.cohorts.k + margin }
}

export interface CohortTypeCost {
  readonly type: DataTypeKey
  readonly window: TimeUnit
  /** Epsilon charged per cell joined; undefined: k-anonymity only, no differential privacy. */
  readonly epsilon: number | undefined
  /** The most cells of this type a person can join per budget period, and per year. */
  readonly cellsPerPeriod: number
  readonly cellsPerYear: number
  readonly threshold: number
}

export interface PolicyCost {
  readonly period: PrivacyPolicy['budget']['period']
  readonly budget: number
  readonly cohorts: readonly CohortTypeCost[]
  /** Worst case over every cohort cell a person can join (basic composition); Infinity if a cohort type has no noise. */
  readonly epsilonPerPeriod: number
  readonly deltaPerPeriod: number
  readonly epsilonPerYear: number
  readonly deltaPerYear: number
  /** Types released as individual records with no noise (no differential privacy: pseudonymised only), and to whom. */
  readonly individualWithoutNoise: readonly { readonly type: DataTypeKey; readonly consent: 'opt-in' | 'with-type' }[]
}

export function policyCost(policy: PrivacyPolicy): PolicyCost {
  const cohorts: CohortTypeCost[] = []
  const individualWithoutNoise: { type: DataTypeKey; consent: 'opt-in' | 'with-type' }[] = []
  for (const spec of DATA_TYPES) {
    const rule = policy.types[spec.key]
    if (rule === undefined) continue
    if ((rule.release === 'individual' || rule.release === 'both') && rule.individual !== undefined && rule.individual.noise === undefined) {
      individualWithoutNoise.push({ type: spec.key, consent: rule.individual.consent })
    }
    if ((rule.release !== 'cohort' && rule.release !== 'both') || rule.cohort === undefined) continue
    cohorts.push({
      type: spec.key,
      window: rule.cohort.window,
      epsilon: rule.cohort.epsilon,
      cellsPerPeriod: windowsPerPeriod(rule.cohort.window, policy.budget.period),
      cellsPerYear: windowsPerPeriod(rule.cohort.window, 'year'),
      threshold: releaseThreshold(policy, rule.cohort).threshold,
    })
  }
  const sum = (pick: (c: CohortTypeCost) => number): number =>
    cohorts.some((c) => c.epsilon === undefined) ? Number.POSITIVE_INFINITY : cohorts.reduce((total, c) => total + pick(c), 0)
  const delta = policy.cohorts.delta
  return {
    period: policy.budget.period,
    budget: policy.budget.epsilon,
    cohorts,
    epsilonPerPeriod: sum((c) => c.cellsPerPeriod * c.epsilon!),
    deltaPerPeriod: sum((c) => c.cellsPerPeriod * delta),
    epsilonPerYear: sum((c) => c.cellsPerYear * c.epsilon!),
    deltaPerYear: sum((c) => c.cellsPerYear * delta),
    individualWithoutNoise,
  }
}

/** The figures as the Markdown PRIVACY.md carries between its `privacy-cost` markers. */
export function renderPolicyCost(cost: PolicyCost): string {
  const eps = (value: number | undefined): string => (value === undefined || !Number.isFinite(value) ? 'none (no DP)' : String(Math.round(value * 1e6) / 1e6))
  const del = (value: number): string => (Number.isFinite(value) ? value.toExponential(2) : 'none (no DP)')
  const lines = [
    `| Per person, cohort streams | per ${cost.period} | per year |`,
    '| --- | --- | --- |',
    `| epsilon (every cell they can join) | ${eps(cost.epsilonPerPeriod)} (budget ${eps(cost.budget)}) | ${eps(cost.epsilonPerYear)} |`,
    `| delta | ${del(cost.deltaPerPeriod)} | ${del(cost.deltaPerYear)} |`,
    '',
    `| Cohort type | window | epsilon per cell | cells per ${cost.period} | cells per year | released when the noisy count reaches |`,
    '| --- | --- | --- | --- | --- | --- |',
    ...cost.cohorts.map((c) => `| ${c.type} | ${c.window} | ${eps(c.epsilon)} | ${c.cellsPerPeriod} | ${c.cellsPerYear} | ${c.threshold} |`),
    '',
    `Individual records without noise (no differential privacy; pseudonymised, not anonymous): ${individualLine(cost.individualWithoutNoise)}.`,
  ]
  return lines.join('\n')
}

function individualLine(types: PolicyCost['individualWithoutNoise']): string {
  const of = (consent: 'opt-in' | 'with-type'): string[] => types.filter((t) => t.consent === consent).map((t) => t.type)
  const parts = [
    ...(of('opt-in').length > 0 ? [`${of('opt-in').join(', ')}, for those who opt in to each`] : []),
    ...(of('with-type').length > 0 ? [`${of('with-type').join(', ')}, for everyone who sells them`] : []),
  ]
  return parts.length === 0 ? 'none' : parts.join('; ')
}
