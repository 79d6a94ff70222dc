import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { inject } from 'vitest'
import { FAKE_FIT_CLOSES_AT, type FakeGoogle } from '@fitstream/fake-google'
import { createLogger, createRedis, deleteKeysWithPrefix, type Env, type JobContext, type Logger, type ServiceRuntime } from '@fitstream/shared'
import type { Redis } from 'ioredis'

export const redisUrl = (): string => inject('redisUrl')

/**
 * How long a test keeps a fault up: `soak` in the soak tier, `fast` otherwise (the shortest length
 * that still proves the behaviour). A number in `override` (a variable set for a local run) wins.
 */
export function tierLength(lengths: { fast: number; soak: number }, override?: string): number {
  if (override !== undefined && override !== '') {
    const value = Number(override)
    if (!Number.isFinite(value) || value <= 0) throw new Error(`a fault length must be a positive number, not ${JSON.stringify(override)}`)
    return value
  }
  return inject('soak') === true ? lengths.soak : lengths.fast
}

/** A queue/key prefix no other test file uses. */
export function uniquePrefix(name: string): string {
  return `test-${name}-${randomBytes(4).toString('hex')}`
}

export const silentLogger = () => createLogger('test', process.env.TEST_LOG_LEVEL ?? 'silent')

/** A producer connection plus cleanup of everything under `prefix`. */
export function testRedis(prefix: string): { redis: Redis; cleanup: () => Promise<void> } {
  const redis = createRedis(redisUrl(), 'producer', `test-${prefix}`)
  return {
    redis,
    cleanup: async () => {
      await deleteKeysWithPrefix(redis, prefix)
      redis.disconnect()
    },
  }
}

/** Prints a test's figures (records sent and received, recovery times, cases tried) for docs/reliability.md. */
export function reportFigures(label: string, figures: object): void {
  process.stdout.write(`${label}: ${JSON.stringify(figures)}\n`)
}

/** A fetcher's environment for a test that runs it in-process against the fake Google and a listening in-process token service. */
export function fetcherTestEnv(google: FakeGoogle, tokenService: ServiceRuntime, prefix: string, extra: Env): Env {
  return {
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: prefix,
    GOOGLE_FITNESS_ROOT_URL: google.rootUrl,
    GOOGLE_HEALTH_ROOT_URL: google.rootUrl,
    GOOGLE_DATA_API: 'fit',
    GOOGLE_FIT_CLOSES_AT: FAKE_FIT_CLOSES_AT,
    TOKEN_SERVICE_URL: `http://127.0.0.1:${(tokenService.server.server.address() as AddressInfo).port}`,
    ...extra,
  }
}

/** What a stage's worker hands its processor, for calling a processor directly (first attempt of one unless given). */
export function jobContext(logger: Logger, job: Partial<Pick<JobContext, 'jobId' | 'attempt' | 'maxAttempts'>> = {}): JobContext {
  return {
    jobId: 'test',
    attempt: 1,
    maxAttempts: 1,
    ...job,
    enqueuedAt: Date.now(),
    logger,
    updateProgress: async () => undefined,
    deferWithoutAttempt: async () => {
      throw new Error('not deferred in tests')
    },
  }
}
