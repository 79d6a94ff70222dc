import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'

/**
 * One hop of the benchmark's baseline: a raw BullMQ chain with the pipeline's four hops and no-op
 * processors, on the same Redis and concurrency, as its own process like each service. What the
 * queue itself can do on this machine; the pipeline's throughput is reported against it.
 *
 * argv: redisUrl prefix hop(1-4) concurrency
 */
const [redisUrl, prefix, hopArg, concurrencyArg] = process.argv.slice(2) as [string, string, string, string]
const hop = Number(hopArg)
const connection = new Redis(redisUrl, { maxRetriesPerRequest: null })
const next = hop < 4 ? new Queue(`hop${hop + 1}`, { connection, prefix }) : undefined
const worker = new Worker(
  `hop${hop}`,
  async (job) => {
    if (next !== undefined) await next.add('hop', job.data, { removeOnComplete: { count: 1000 }, attempts: 3 })
  },
  { connection: new Redis(redisUrl, { maxRetriesPerRequest: null }), prefix, concurrency: Number(concurrencyArg) },
)
worker.on('error', (err) => process.stderr.write(`baseline hop ${hop}: ${err.message}\n`))
next?.on('error', (err) => process.stderr.write(`baseline hop ${hop}: ${err.message}\n`))
process.on('SIGTERM', () => {
  void worker.close().then(() => process.exit(0))
})
process.stdout.write('ready\n')
