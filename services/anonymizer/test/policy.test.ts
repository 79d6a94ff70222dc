import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { ConfigError } from '@fitstream/shared'
import { loadConfig } from '../src/config.js'
import { PolicyError } from '../src/errors.js'
import { DEFAULT_POLICY_FILE, describePolicy, loadPolicy, parsePolicy } from '../src/policy.js'

const dir = mkdtempSync(join(tmpdir(), 'fitstream-policy-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const key = Buffer.alloc(32, 9).toString('base64')
const base = { version: 1, pseudonym: { scheme: 'hmac-sha256' }, budget: { epsilon: 4 }, cohorts: { k: 10 } }
const invalid = (document: unknown) => () => parsePolicy(JSON.stringify(document), 'json', 'p.json')

describe('the default policy', () => {
  it('is conservative: location dropped, cohorts for everyone, individual records of activity totals and mean heart rate only by opt-in', () => {
    const policy = loadPolicy(DEFAULT_POLICY_FILE)
    const release = describePolicy(policy)
    expect(release.location).toBe('drop')
    expect(
      Object.entries(release)
        .filter(([, r]) => r === 'individual' || r === 'both')
        .map(([t]) => t)
        .sort(),
    ).toEqual(['active_minutes', 'calories', 'heart_minutes', 'heart_rate', 'steps'])
    expect(policy).toMatchObject({ pseudonym: { epoch: 'month' }, budget: { period: 'month', epsilon: 16 }, cohorts: { k: 10, graceHours: 48 } })
    // Google's daily summaries and floors share what the other types leave of the budget (PRIVACY.md).
    const summaries = new Set(['resting_heart_rate', 'heart_rate_variability', 'vo2_max', 'respiratory_rate', 'floors'])
    const summaryEpsilon = { week: 0.06, month: 0.25 } as Record<string, number>
    for (const [type, rule] of Object.entries(policy.types)) {
      if (rule.individual !== undefined) expect(rule.individual).toMatchObject({ consent: 'opt-in', granularity: 'hour' })
      if (rule.individual !== undefined) expect(rule.cohort, 'every individual type is in cohorts too').toBeDefined()
      for (const field of Object.values(rule.individual?.fields ?? {})) expect(field.clamp).toBeDefined()
      if (summaries.has(type)) expect([type, rule.release, rule.individual]).toEqual([type, 'cohort', undefined])
      if (rule.cohort !== undefined && rule.release !== 'drop') {
        const expected = rule.cohort.window === 'day' ? 0.04 : summaries.has(type) ? summaryEpsilon[rule.cohort.window] : 0.1
        expect([type, rule.cohort.epsilon]).toEqual([type, expected])
      }
    }
    expect([...summaries].filter((type) => policy.types[type as keyof typeof policy.types]?.cohort === undefined)).toEqual([])
    expect(Object.keys(policy.types.heart_rate!.individual!.fields)).toEqual(['avg'])
  })

  it('is what the devstack’s opted-in policy extends, changing only consent and heart-rate extremes', () => {
    const base = loadPolicy(DEFAULT_POLICY_FILE)
    const optedIn = loadPolicy(fileURLToPath(new URL('../policies/opted-in.yaml', import.meta.url)))
    for (const [type, rule] of Object.entries(optedIn.types)) {
      const { individual, ...rest } = rule
      const { individual: baseIndividual, ...baseRest } = base.types[type as keyof typeof base.types]!
      expect(rest, type).toEqual(baseRest)
      if (individual === undefined) continue
      expect(individual.consent).toBe('with-type')
      expect({ ...individual, consent: 'opt-in', fields: {} }).toEqual({ ...baseIndividual, fields: {} })
      expect(individual.fields).toMatchObject(baseIndividual!.fields)
    }
    expect(optedIn.cohorts).toEqual(base.cohorts)
    expect(optedIn.budget).toEqual(base.budget)
  })
})

describe('policy validation', () => {
  it.each([
    ['an unknown type', { ...base, types: { stepz: { release: 'drop' } } }, /types/],
    [
      'an unknown field',
      { ...base, types: { steps: { release: 'individual', individual: { fields: { cnt: {} } } } } },
      /types\.steps\.individual\.fields\.cnt: not a field of steps \(count\)/,
    ],
    [
      'noise without a clamp',
      { ...base, types: { steps: { release: 'individual', individual: { fields: { count: {} }, noise: { epsilon: 1 } } } } },
      /noise needs a clamp/,
    ],
    [
      'a cohort field without bounds',
      { ...base, types: { steps: { release: 'cohort', cohort: { fields: { count: { round: 1 } } } } } },
      /types\.steps\.cohort\.fields\.count\.clamp/,
    ],
    ['a release with no section', { ...base, types: { steps: { release: 'both', individual: { fields: { count: {} } } } } }, /needs a cohort section/],
    [
      'a cell epsilon above the budget',
      { ...base, types: { steps: { release: 'cohort', cohort: { epsilon: 5, fields: { count: { clamp: [0, 1] } } } } } },
      /exceeds the whole budget/,
    ],
    [
      'cohort cells that could outspend the budget in a month',
      { ...base, types: { steps: { release: 'cohort', cohort: { window: 'day', epsilon: 0.2, fields: { count: { clamp: [0, 1] } } } } } },
      /budget\.epsilon: cohort cells a person can join in a month cost up to 6\.2, more than the budget/,
    ],
    [
      'record noise the cohort reserve leaves no room for',
      {
        ...base,
        types: {
          steps: {
            release: 'both',
            individual: { fields: { count: { clamp: [0, 1] } }, noise: { epsilon: 1 } },
            cohort: { window: 'day', epsilon: 0.1, fields: { count: { clamp: [0, 1] } } },
          },
        },
      },
      /types\.steps\.individual\.noise\.epsilon: exceeds what the budget leaves after the cohort cells \(0\.9\)/,
    ],
    ['a delta too large to mean anything', { ...base, cohorts: { k: 10, delta: 0.1 }, types: {} }, /cohorts\.delta/],
    ['k of 1', { ...base, cohorts: { k: 1 }, types: {} }, /cohorts\.k/],
    ['a plain hash for pseudonyms', { ...base, pseudonym: { scheme: 'sha256' }, types: {} }, /pseudonym\.scheme/],
    ['a fine geohash', { ...base, location: { geohashPrecision: 9 }, types: {} }, /location\.geohashPrecision/],
    ['an unknown top-level key', { ...base, types: {}, noise: true }, /noise/],
    [
      'noise the exact sampler can not draw',
      { ...base, types: { steps: { release: 'cohort', cohort: { epsilon: 1, fields: { count: { clamp: [0, 1e9], round: 0.001 } } } } } },
      /types\.steps\.cohort\.fields\.count: clamp is too wide/,
    ],
    ['descending band edges', { ...base, types: { weight: { release: 'individual', individual: { fields: { avg: { bands: [80, 60] } } } } } }, /ascending/],
  ])('rejects %s with a message that says where', (_, document, message) => {
    expect(invalid(document)).toThrow(PolicyError)
    expect(invalid(document)).toThrow(message)
  })

  it('reads YAML and JSON files, and names a file that is missing or malformed', () => {
    const json = join(dir, 'policy.json')
    writeFileSync(json, JSON.stringify({ ...base, types: { steps: { release: 'cohort', cohort: { fields: { count: { clamp: [0, 50000] } } } } } }))
    expect(loadPolicy(json).types.steps?.cohort?.window).toBe('day')
    const yaml = join(dir, 'broken.yaml')
    writeFileSync(yaml, 'version: 1\ntypes: [unclosed\n')
    expect(() => loadPolicy(yaml)).toThrow(/broken\.yaml is not valid YAML/)
    expect(() => loadPolicy(join(dir, 'missing.yaml'))).toThrow(/missing\.yaml can't be read: ENOENT/)
  })

  it('lays a file that extends another over it, and refuses a loop', () => {
    writeFileSync(
      join(dir, 'base.yaml'),
      JSON.stringify({ ...base, types: { steps: { release: 'cohort', cohort: { fields: { count: { clamp: [0, 50000] } } } } } }),
    )
    writeFileSync(join(dir, 'child.yaml'), 'extends: base.yaml\ncohorts: { k: 20 }\ntypes: { steps: { cohort: { window: week } } }\n')
    const child = loadPolicy(join(dir, 'child.yaml'))
    expect(child.cohorts.k).toBe(20)
    expect(child.types.steps?.cohort).toMatchObject({ window: 'week', fields: { count: { clamp: [0, 50000] } } })
    writeFileSync(join(dir, 'loop.yaml'), 'extends: loop.yaml\n')
    expect(() => loadPolicy(join(dir, 'loop.yaml'))).toThrow(/extends itself/)
  })
})

describe('loadConfig', () => {
  it('loads the default policy when no file is named', () => {
    const config = loadConfig({ PSEUDONYM_KEY: key })
    expect(config.ANONYMIZER_POLICY_FILE).toBe(DEFAULT_POLICY_FILE)
    expect(config.policy.types.location?.release).toBe('drop')
  })

  it('stops with a ConfigError (exit 78) on a bad policy file', () => {
    const bad = join(dir, 'bad.yaml')
    writeFileSync(bad, 'version: 2\n')
    expect(() => loadConfig({ PSEUDONYM_KEY: key, ANONYMIZER_POLICY_FILE: bad })).toThrow(ConfigError)
    expect(() => loadConfig({ PSEUDONYM_KEY: key, ANONYMIZER_POLICY_FILE: bad })).toThrow(/bad\.yaml is invalid: version/)
  })

  it('refuses variables the policy file replaced, naming where they went', () => {
    expect(() => loadConfig({ PSEUDONYM_KEY: key, PSEUDONYM_EPOCH: 'week' })).toThrow(
      /PSEUDONYM_EPOCH: no longer read; set pseudonym\.epoch in the policy file/,
    )
  })
})
