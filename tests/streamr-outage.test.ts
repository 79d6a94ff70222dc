import { describe, expect, it } from 'vitest'
import { reportFigures, tierLength } from './helpers.js'
import { expectNoLeaks } from './secrets.js'
import { useStack } from './system.js'

/**
 * The Streamr network out of reach (8 s in the default tier, two minutes in the soak tier): the
 * entry point stopped and the chain's RPC frozen (it accepts connections and never answers), and the
 * publisher restarted into the outage, so it can neither find subscribers nor read the registry. Publish jobs must wait, then drain once the
 * network is back: nothing lost, nothing delivered twice.
 */
const TYPES = ['steps', 'calories', 'heart_rate'] as const
/** FITSTREAM_STREAMR_OUTAGE_SECONDS sets it for a local run. */
const OUTAGE_SECONDS = tierLength({ fast: 8, soak: 120 }, process.env.FITSTREAM_STREAMR_OUTAGE_SECONDS)

const system = useStack(
  'streamr-outage',
  {
    dataTypes: TYPES,
    backfillDays: 1,
    env: { JOB_LOCK_MS: '3000', STALLED_CHECK_MS: '1000' },
  },
  // A test that fails mid-outage leaves the chain frozen: thawed, the services can shut down.
  { beforeStop: (stack) => stack.network.thawChain() },
)

describe('Streamr outage', () => {
  it(
    `entry point down and chain RPC frozen for ${OUTAGE_SECONDS} s: the publish backlog waits, then drains exactly once`,
    async () => {
      system.check.add(...(await Promise.all(Array.from({ length: 4 }, (_, i) => system.stack.registerUser({ seed: `before-${i}`, dataTypes: TYPES })))))
      await system.check.waitComplete(120_000, 0)

      const network = system.stack.network
      const publisher = system.stack.service('publisher')
      await network.stopEntryPoint()
      network.freezeChain()
      const downAt = Date.now()
      // A publisher (re)started during the outage knows nothing cached: it has to wait for the network.
      await publisher.kill()
      publisher.start()
      const during = await Promise.all(Array.from({ length: 8 }, (_, i) => system.stack.registerUser({ seed: `during-${i}`, dataTypes: TYPES })))
      system.check.add(...during)
      const receivedBefore = system.check.report().received

      // The users' data reaches the publish queue, and the restarted publisher says it is waiting for the chain.
      const publishQueue = system.stack.queues().queue('publish')
      const backlogOf = async () => publishQueue.getJobCounts('waiting', 'active', 'delayed', 'prioritized')
      const jobsIn = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0)
      await expect.poll(async () => jobsIn(await backlogOf()), { timeout: OUTAGE_SECONDS * 1_000 + 60_000, interval: 250 }).toBeGreaterThan(0)
      await expect.poll(() => publisher.lines.some((l) => l.includes("the chain's RPC does not answer")), { timeout: 30_000, interval: 250 }).toBe(true)
      await new Promise((resolve) => setTimeout(resolve, OUTAGE_SECONDS * 1_000 - (Date.now() - downAt)))
      const backlog = await backlogOf()
      const backlogJobs = jobsIn(backlog)
      const receivedDuring = system.check.report().received - receivedBefore
      expect(backlogJobs).toBeGreaterThan(0)
      expect(receivedDuring).toBe(0)
      expect((await system.stack.queues().deadLetterQueue('publish').getJobs(['waiting'])).map((job) => job.data)).toEqual([])
      expect(publisher.running).toBe(true)

      network.thawChain()
      await network.startEntryPoint()
      const upAt = Date.now()
      await publisher.waitReady(120_000)
      const report = await system.check.waitComplete(240_000)
      const drainedMs = Date.now() - upAt
      reportFigures('streamr: outage', { outageSeconds: OUTAGE_SECONDS, backlog, receivedDuring, ...report, drainedMs })
      expect(report).toMatchObject({ usersComplete: report.users, duplicates: 0, unexpected: 0 })
      expect(report.distinct).toBe(report.expected)
      expect(await system.stack.queues().deadLetterQueue('publish').getJobs(['waiting'])).toEqual([])
    },
    (OUTAGE_SECONDS + 480) * 1_000,
  )

  it('leaves no secret in any log line, job payload, dead letter or metric', () => expectNoLeaks(system.stack, system.check.users))
})
