import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { recordsOf, type ServiceName } from '@fitstream/devstack'
import { createRedis, type Stage } from '@fitstream/shared'
import type { Redis } from 'ioredis'
import { freePort } from '@fitstream/streamr-local'
import { redisUrl, reportFigures } from './helpers.js'
import { expectNoLeaks } from './secrets.js'
import { useStack } from './system.js'

/**
 * Crashes and restarts under load, every part real, the publisher in the devstack's release slots:
 * each service is killed with SIGKILL while it holds jobs, then started again; each is stopped with
 * SIGTERM while it holds jobs. A buyer's subscriber counts what arrives: every record of every user
 * exactly once, in the slots' format.
 */
const TYPES = ['steps', 'calories', 'heart_rate'] as const
/** The stage whose jobs each service works. */
const STAGE_OF: Record<ServiceName, Stage> = { 'token-service': 'sync', fetcher: 'fetch', anonymizer: 'anonymize', publisher: 'publish' }
const GRACE_MS = 15_000

const system = useStack('faults', async () => ({
  backfillDays: 1,
  // Slow enough that fetches are in flight when a process dies.
  googleLatencyMs: 150,
  // The same port after a restart, so the fetchers still find the token service.
  tokenServicePort: await freePort(),
  env: { JOB_LOCK_MS: '3000', STALLED_CHECK_MS: '1000', RETRY_BACKOFF_MS: '200', SHUTDOWN_TIMEOUT_MS: String(GRACE_MS) },
  // One buyer on this machine has a message within milliseconds: 3 s of flush on SIGTERM is plenty.
  serviceEnv: { publisher: { PUBLISH_LOCK_MS: '3000', STREAMR_SHUTDOWN_FLUSH_MS: '3000' } },
}))
let redis: Redis

beforeAll(() => {
  redis = createRedis(redisUrl(), 'producer', 'faults-test')
})

afterAll(() => {
  redis?.disconnect()
})

/** Registers users in small batches until the stage has jobs in flight; returns their ids. */
async function loadUntilActive(stage: Stage, label: string): Promise<string[]> {
  const queue = system.stack.queues().queue(stage)
  for (let batch = 0; batch < 10; batch++) {
    const users = await Promise.all(Array.from({ length: 4 }, (_, i) => system.stack.registerUser({ seed: `${label}-${batch}-${i}`, dataTypes: TYPES })))
    system.check.add(...users)
    const deadline = Date.now() + 4_000
    while (Date.now() < deadline) {
      const active = await queue.getJobs(['active'])
      if (active.length > 0) return active.map((job) => job.id!)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }
  throw new Error(`no ${stage} job was ever in flight`)
}

/** Waits until none of the jobs is waiting, active or delayed (completed jobs holding personal data are removed). */
async function waitSettled(stage: Stage, jobIds: readonly string[], timeoutMs: number): Promise<number> {
  const queue = system.stack.queues().queue(stage)
  const started = Date.now()
  await expect
    .poll(async () => (await Promise.all(jobIds.map((id) => queue.getJobState(id)))).filter((state) => state !== 'completed' && state !== 'unknown'), {
      timeout: timeoutMs,
      interval: 100,
    })
    .toEqual([])
  return Date.now() - started
}

/** Every record the buyer got came in a release slot's message (fitstream.records/2). */
function expectOnlySlotMessages(): void {
  const schemas = new Set(
    system.check.subscriber.messages.filter((m) => recordsOf(m.content).length > 0).map((m) => (m.content as { schema?: unknown }).schema),
  )
  expect([...schemas]).toEqual(['fitstream.records/2'])
}

async function expectNoDeadLetters(): Promise<void> {
  for (const stage of ['sync', 'fetch', 'anonymize', 'publish'] as const) {
    const letters = await system.stack.queues().deadLetterQueue(stage).getJobs(['waiting'])
    expect(
      letters.map((job) => job.data),
      `${stage}-dlq`,
    ).toEqual([])
  }
}

/** After a round of faults: every user's records arrived, each exactly once and in slots, and nothing was dead-lettered. */
async function expectEachRecordOnce(label: string, figures: object): Promise<void> {
  const report = await system.check.waitComplete(120_000)
  reportFigures(label, { ...report, ...figures })
  expect(report).toMatchObject({ usersComplete: report.users, duplicates: 0, unexpected: 0 })
  // Each record exactly once: every one arrived, and nothing arrived twice.
  expect(report.distinct).toBe(report.expected)
  expect(report.received).toBe(report.expected)
  expectOnlySlotMessages()
  await expectNoDeadLetters()
}

describe('faults under load', () => {
  it('kill -9 of each service mid-job, then a restart: every record arrives exactly once', async () => {
    const recovery: Record<string, { jobsInFlight: number; recoveredMs: number }> = {}
    for (const name of ['fetcher', 'anonymizer', 'publisher', 'token-service'] as const) {
      const stage = STAGE_OF[name]
      const inFlight = await loadUntilActive(stage, `kill-${name}`)
      const service = system.stack.service(name)
      const killedAt = Date.now()
      await service.kill()
      service.start()
      await service.waitReady()
      // A dead worker's job is handed on once its lock lapses (JOB_LOCK_MS) and a stalled-job check runs.
      await waitSettled(stage, inFlight, 60_000)
      recovery[name] = { jobsInFlight: inFlight.length, recoveredMs: Date.now() - killedAt }
    }
    await expectEachRecordOnce('faults: kill -9', { recovery })
  }, 420_000)

  it('SIGTERM mid-job: each service drains and exits within its grace period, nothing left locked or lost', async () => {
    const stopped: Record<string, { jobsInFlight: number; exitMs: number }> = {}
    for (const name of ['fetcher', 'anonymizer', 'publisher', 'token-service'] as const) {
      const stage = STAGE_OF[name]
      const inFlight = await loadUntilActive(stage, `term-${name}`)
      const service = system.stack.service(name)
      const started = Date.now()
      expect(await service.stop(GRACE_MS + 5_000), `${name} exit code`).toBe(0)
      const exitMs = Date.now() - started
      expect(exitMs, `${name} exit time`).toBeLessThan(GRACE_MS)
      expect(service.lines.some((line) => line.includes('"shut down"'))).toBe(true)
      // What it held was finished, not abandoned: no job of its stage active, no lock left.
      const queue = system.stack.queues().queue(stage)
      expect(await queue.getActiveCount()).toBe(0)
      expect(await redis.keys(`${system.stack.prefix}:${stage}:*:lock`)).toEqual([])
      stopped[name] = { jobsInFlight: inFlight.length, exitMs }
      service.start()
      await service.waitReady()
    }
    await expectEachRecordOnce('faults: SIGTERM', { stopped })
  }, 420_000)

  it('leaves no secret in any log line, job payload, dead letter or metric', () => expectNoLeaks(system.stack, system.check.users))
})
