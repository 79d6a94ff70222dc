import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { StageQueues, type FitnessSample, type Logger, type RetryPolicy, type Stage } from '@fitstream/shared'
import { testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { deriveKeys } from '../src/anonymize.js'
import type { RandomSource } from '../src/noise.js'
import { loadPolicy, DEFAULT_POLICY_FILE, parsePolicy, type PrivacyPolicy } from '../src/policy.js'

export const HOUR = 3_600_000
export const DAY = 24 * HOUR
/** 2026-11-23T10:00Z, a Monday. */
export const t0 = Date.UTC(2026, 10, 23, 10)

export const defaultPolicy = (): PrivacyPolicy => loadPolicy(DEFAULT_POLICY_FILE)
/** The default policy with everyone opted in to individual records and hourly heart-rate extremes kept (what the devstack runs). */
export const optedInPolicy = (): PrivacyPolicy => loadPolicy(fileURLToPath(new URL('../policies/opted-in.yaml', import.meta.url)))
export const testKeys = () => deriveKeys(randomBytes(32))

/**
 * The default policy (its `cohorts.history`, grace period, windows and other types as they ship) with
 * heart rate's cells given so much epsilon (5,000) that the noise never moves a value off its grid, and
 * k = 3 (a release threshold of 4), so a few people make a cell whose count and mean a test works out
 * by hand.
 */
export function exactHeartRateDefaultPolicy(): PrivacyPolicy {
  const document = parseYaml(readFileSync(DEFAULT_POLICY_FILE, 'utf8')) as { budget: object; cohorts: object; types: Record<string, { cohort?: object }> }
  const heartRate = document.types.heart_rate!
  return policyFrom({
    ...document,
    budget: { ...document.budget, epsilon: 200_000 },
    cohorts: { ...document.cohorts, k: 3, delta: 1e-3 },
    types: { ...document.types, heart_rate: { ...heartRate, cohort: { ...heartRate.cohort, epsilon: 5_000 } } },
  })
}

/** A policy from an object, through the same validation a file gets. */
export function policyFrom(document: unknown): PrivacyPolicy {
  return parsePolicy(JSON.stringify(document), 'json', 'test policy')
}

/** A policy of version 1 with HMAC pseudonyms and the given budget, cohorts and types, validated as a file is. */
export function policyOf(parts: { readonly budget: object; readonly cohorts: object; readonly types: object }): PrivacyPolicy {
  return policyFrom({ version: 1, pseudonym: { scheme: 'hmac-sha256' }, ...parts })
}

export function sample(type: FitnessSample['type'], startMs: number, values: Record<string, number>, extra: Partial<FitnessSample> = {}): FitnessSample {
  return { type, startMs, endMs: startMs + HOUR, values, unit: 'x', revision: 0, ...extra }
}

/** A small seeded generator (mulberry32), so statistical tests give the same answer every run. */
export function seededSource(seed: number): RandomSource {
  let state = seed >>> 0
  const next32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let z = state
    z = Math.imul(z ^ (z >>> 15), z | 1)
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61)
    return (z ^ (z >>> 14)) >>> 0
  }
  return {
    uniformInt: (max) => {
      const limit = 2 ** 48 - (2 ** 48 % max)
      for (;;) {
        const value = (next32() >>> 8) * 2 ** 24 + (next32() >>> 8)
        if (value < limit) return value % max
      }
    },
  }
}

export const retry: Record<Stage, RetryPolicy> = {
  sync: { attempts: 1, backoffMs: 100 },
  fetch: { attempts: 1, backoffMs: 100 },
  anonymize: { attempts: 1, backoffMs: 100 },
  publish: { attempts: 1, backoffMs: 100 },
}

/** A Redis connection and stage queues under a prefix of their own, closed and removed after the file's tests. */
export function redisWithQueues(name: string, logger: Logger) {
  const prefix = uniquePrefix(name)
  const { redis, cleanup } = testRedis(prefix)
  const queues = new StageQueues({ connection: redis, prefix, retry, logger })
  afterAll(async () => {
    await queues.close()
    await cleanup()
  })
  return { prefix, redis, queues }
}

export { jobContext } from '../../../tests/helpers.js'
