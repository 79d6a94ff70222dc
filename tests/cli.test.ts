import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StageQueues, commonEnv, createLogger, parseEnv, retryPolicies, type DeadLetter } from '@fitstream/shared'
import { redisUrl, testRedis, uniquePrefix } from './helpers.js'

/** `fitstream dlq …` as an operator runs it, against real Redis. */
const bin = fileURLToPath(new URL('../bin/fitstream.mjs', import.meta.url))
const prefix = uniquePrefix('cli')
const { redis, cleanup } = testRedis(prefix)
let queues: StageQueues

async function fitstream(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH, REDIS_URL: redisUrl(), QUEUE_PREFIX: prefix } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  )
}

beforeAll(async () => {
  queues = new StageQueues({ connection: redis, prefix, retry: retryPolicies(parseEnv(commonEnv, {})), logger: createLogger('test', 'silent') })
  const letter: DeadLetter = {
    stage: 'anonymize',
    jobId: 'anonymize-1',
    jobName: 'anonymize',
    payload: { syncId: 's', userId: 'user-cli-00000001', window: { startMs: 0, endMs: 3_600_000 }, samples: [{ type: 'steps', values: { count: 4321 } }] },
    error: { code: 'FST_ERR_INVALID_PAYLOAD', name: 'InvalidPayloadError', message: 'invalid anonymize job payload' },
    permanent: true,
    attemptsMade: 1,
    maxAttempts: 3,
    createdAt: new Date().toISOString(),
    firstAttemptAt: null,
    failedAt: new Date().toISOString(),
  }
  await queues.addDeadLetter('anonymize', letter, 'cli-dl-1')
})

afterAll(async () => {
  await queues.close()
  await cleanup()
})

describe('fitstream dlq', () => {
  it('lists dead letters by stage and reason, raw data hidden', async () => {
    const { code, stdout } = await fitstream('dlq', 'list', '--json')
    expect(code).toBe(0)
    const result = JSON.parse(stdout) as { summary: { stage: string; count: number }[]; entries: { id: string; payload: { samples: unknown } }[] }
    expect(result.summary.find((s) => s.stage === 'anonymize')?.count).toBe(1)
    expect(result.entries[0]).toMatchObject({ id: 'cli-dl-1', payload: { samples: '[1 raw samples hidden]' } })
    expect(stdout).not.toContain('4321')
  })

  it('refuses to purge without --yes when nobody can be asked', async () => {
    const refused = await fitstream('dlq', 'purge', '--stage', 'anonymize')
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/would delete 1 dead letters for good; repeat with --yes/)
    const done = await fitstream('dlq', 'purge', '--stage', 'anonymize', '--yes')
    expect(done).toMatchObject({ code: 0, stdout: 'purged 1 dead letters\n' })
  })

  it('explains itself', async () => {
    const { code, stdout } = await fitstream('--help')
    expect(code).toBe(0)
    expect(stdout).toMatch(/dlq list\|show\|replay\|purge/)
    expect((await fitstream('dlq', 'show', 'nowhere', 'x')).code).toBe(64)
  })
})
