import { parseArgs } from 'node:util'
import { Stack, type RegisteredUser } from './stack.js'

/**
 * The fetcher's own figure, on the real processes: fetch jobs per second of one fetcher process
 * against the fake Google at a given latency (Redis per user is measured by `npm run bench`).
 *
 * node packages/devstack/dist/measure.js fetch --jobs 2000 --fetch-users 1000 --latency 50 --concurrency 100
 */
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    jobs: { type: 'string', default: '2000' },
    'fetch-users': { type: 'string', default: '500' },
    latency: { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '100' },
  },
})
const say = (line: string): void => void process.stdout.write(`${line}\n`)
const HOUR = 3_600_000

async function waitForIdle(stack: Stack, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const counts = await Promise.all(
      (['sync', 'fetch', 'anonymize', 'publish'] as const).map((stage) =>
        stack.queues().queue(stage).getJobCounts('waiting', 'active', 'prioritized', 'delayed'),
      ),
    )
    // The sync queue always holds one delayed job per user: the next scheduled run.
    const busy = counts.reduce((n, c, i) => n + c.waiting! + c.active! + c.prioritized! + (i === 0 ? 0 : c.delayed!), 0)
    if (busy === 0) return
    if (Date.now() > deadline) throw new Error(`pipeline still busy after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
}

async function fetchRate(): Promise<void> {
  const jobs = Number(values.jobs)
  const stack = await Stack.start({
    prefix: `measure-fetch-${process.pid}`,
    backfillDays: 0,
    googleLatencyMs: Number(values.latency),
    env: { LOG_LEVEL: 'warn', FETCH_CONCURRENCY: values.concurrency!, GOOGLE_RATE_LIMIT_PER_SECOND: '100000' },
  })
  try {
    const registered: RegisteredUser[] = []
    const count = Number(values['fetch-users'])
    for (let i = 0; i < count; i += 50) {
      registered.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(50, count - i) }, (_, j) =>
            stack.registerUser({ seed: `fetch-${i + j}`, dataTypes: ['steps', 'calories', 'heart_rate'] }),
          ),
        )),
      )
    }
    await waitForIdle(stack, 60_000)
    const end = Math.floor(Date.now() / HOUR) * HOUR
    // Paused, so the clock starts with every job already queued.
    await stack.queues().queue('fetch').pause()
    await stack.queues().addBulk(
      'fetch',
      Array.from({ length: jobs }, (_, i) => ({
        data: {
          syncId: `measure-${i}`,
          userId: registered[i % registered.length]!.userId,
          dataTypes: ['steps', 'calories', 'heart_rate'],
          window: { startMs: end - (i + 2) * HOUR, endMs: end - (i + 1) * HOUR },
          bucketMs: HOUR,
        },
        options: { jobId: `measure-${i}` },
      })),
    )
    const started = performance.now()
    await stack.queues().queue('fetch').resume()
    // Completed jobs are trimmed as they pile up, so count what is left instead.
    for (;;) {
      const c = await stack.queues().queue('fetch').getJobCounts('waiting', 'active', 'prioritized', 'delayed')
      if (c.waiting! + c.active! + c.prioritized! + c.delayed! === 0) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const seconds = (performance.now() - started) / 1000
    say(
      JSON.stringify({
        jobs,
        latencyMs: Number(values.latency),
        concurrency: Number(values.concurrency),
        seconds: Number(seconds.toFixed(2)),
        fetchesPerSecond: Math.round(jobs / seconds),
      }),
    )
  } finally {
    await stack.stop()
  }
}

if (positionals[0] === 'fetch') await fetchRate()
else say('usage: measure.js fetch [--jobs N] [--fetch-users N] [--latency MS] [--concurrency N]')
