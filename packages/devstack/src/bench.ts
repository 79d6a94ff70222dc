import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import { GOOGLE_DATA_APIS, createRedis, pseudonymOf, waitForRedis, type DataTypeKey, type GoogleDataApi } from '@fitstream/shared'
import { COMPOSE_REDIS_ARGS, RedisServer } from './redis-server.js'
import { redisBytesByKind } from './redis-usage.js'
import { DEFAULT_PUBLISH_SLOT_MS, Stack, type RegisteredUser } from './stack.js'
import { recordsOf, type ReceivedMessage, type Subscriber } from './subscriber.js'

/**
 * `npm run bench`: the real pipeline (four services as processes, real Redis, a local Streamr
 * network, the fake Google with latency) over synthetic users with a day of hourly data, measured
 * against a raw four-hop BullMQ chain with no-op processors on the same Redis. Writes
 * bench/results/latest.json and docs/benchmarks.md.
 */
const { values } = parseArgs({
  options: {
    users: { type: 'string', default: process.env.BENCH_USERS ?? '2000' },
    latency: { type: 'string', default: process.env.BENCH_GOOGLE_LATENCY_MS ?? '50' },
    /** The Google API the users are read from: `health` (the default for deployments, one request per type) or `fit` (one per fetch). */
    'google-api': { type: 'string', default: process.env.BENCH_GOOGLE_API ?? 'health' },
    /** Write a V8 CPU profile of every service process into this folder (open them in Chrome DevTools). */
    'cpu-prof-dir': { type: 'string' },
    /** The publisher's release slot (ms); 0 publishes each job as it comes, for a comparison with that path. */
    'publish-slot-ms': { type: 'string', default: process.env.BENCH_PUBLISH_SLOT_MS ?? String(DEFAULT_PUBLISH_SLOT_MS) },
  },
})
const PUBLISH_SLOT_MS = Number(values['publish-slot-ms'])
if (!Number.isInteger(PUBLISH_SLOT_MS) || PUBLISH_SLOT_MS < 0) {
  process.stderr.write(`--publish-slot-ms must be a whole number of milliseconds, not ${JSON.stringify(values['publish-slot-ms'])}\n`)
  process.exit(2)
}
const GOOGLE_API = values['google-api']
if (!(GOOGLE_DATA_APIS as readonly (string | undefined)[]).includes(GOOGLE_API)) {
  process.stderr.write(`--google-api must be one of ${GOOGLE_DATA_APIS.join(', ')}, not ${JSON.stringify(GOOGLE_API)}\n`)
  process.exit(2)
}
const USERS = Number(values.users)
const LATENCY = Number(values.latency)
const TYPES: DataTypeKey[] = ['steps', 'calories', 'heart_rate', 'active_minutes', 'heart_minutes']
/** Each stage's concurrency, the same for the pipeline and the baseline. */
const CONCURRENCY = { sync: 50, fetch: 100, anonymize: 16, publish: 16 }
const root = fileURLToPath(new URL('../../../', import.meta.url))
const say = (line: string): void => void process.stdout.write(`${line}\n`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function commandCalls(redis: Redis): Promise<number> {
  const info = await redis.info('commandstats')
  return [...info.matchAll(/calls=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0)
}

async function pipelineIdle(stack: Stack): Promise<boolean> {
  const counts = await Promise.all(
    (['sync', 'fetch', 'anonymize', 'publish'] as const).map((s) => stack.queues().queue(s).getJobCounts('waiting', 'active', 'prioritized')),
  )
  return counts.every((c) => c.waiting === 0 && c.active === 0 && c.prioritized === 0)
}

/** Waits until the pipeline is idle and nothing new has arrived for `quietMs`. */
async function settle(stack: Stack, messages: () => number, timeoutMs: number, quietMs = 1500): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = -1
  let since = Date.now()
  for (;;) {
    const now = messages()
    if (now !== last) {
      last = now
      since = Date.now()
    }
    if (Date.now() - since >= quietMs && (await pipelineIdle(stack))) return
    if (Date.now() > deadline) throw new Error(`pipeline not settled after ${timeoutMs} ms`)
    await sleep(250)
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

async function scrape(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2_000) })).text()
}

/** CPU seconds (user and system) a process has used so far, from Linux's /proc; undefined elsewhere. */
function cpuSecondsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    // Fields after the command name: utime and stime are the 12th and 13th, in clock ticks (100 a second).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return undefined
  }
}

/** CPU used so far by each process of the run: the services, the buyer, Redis, and this process. */
function cpuSnapshot(stack: Stack, subscriber: Subscriber, redisPid: number | undefined): Map<string, number> {
  const own = process.cpuUsage()
  const entries: [string, number | undefined][] = [
    ...stack.services.map((s): [string, number | undefined] => [s.label, cpuSecondsOf(s.pid)]),
    ['subscriber (buyer)', cpuSecondsOf(subscriber.pid)],
    ['redis', cpuSecondsOf(redisPid)],
    ['benchmark process (fake Google, Streamr entry point)', (own.user + own.system) / 1e6],
  ]
  return new Map(entries.filter((e): e is [string, number] => e[1] !== undefined))
}

/**
 * A Redis of its own with docker-compose.yml's settings, so the benchmark measures the Redis FitStream
 * runs on (AOF off: the figures are memory and commands, not disk), or REDIS_URL when there is no
 * redis-server.
 */
async function ownRedis(): Promise<{ url: string; pid?: number; stop: () => Promise<void> }> {
  try {
    const server = await RedisServer.start([...COMPOSE_REDIS_ARGS, '--appendonly', 'no'])
    return { url: server.url, ...(server.pid === undefined ? {} : { pid: server.pid }), stop: () => server.close() }
  } catch (err) {
    say(`• ${(err as Error).message.split('\n')[0]}: using REDIS_URL (memory figures reflect its settings)`)
    return { url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', stop: async () => undefined }
  }
}

async function main(): Promise<void> {
  const startedAt = Date.now()
  const ownedRedis = await ownRedis()
  const stack = await Stack.start({
    publishSlotMs: PUBLISH_SLOT_MS,
    redisUrl: ownedRedis.url,
    prefix: `bench-${process.pid}`,
    backfillDays: 1,
    googleLatencyMs: LATENCY,
    googleApi: GOOGLE_API as GoogleDataApi,
    partitions: 8,
    ...(values['cpu-prof-dir'] === undefined ? {} : { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof-dir']}`] }),
    env: {
      LOG_LEVEL: 'warn',
      // As in production (the Dockerfile): a heap cap and a small young generation keep RSS down.
      NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS ?? '--max-old-space-size=160 --max-semi-space-size=4',
      SYNC_INTERVAL_MS: String(24 * 3_600_000),
      SYNC_CONCURRENCY: String(CONCURRENCY.sync),
      FETCH_CONCURRENCY: String(CONCURRENCY.fetch),
      ANONYMIZE_CONCURRENCY: String(CONCURRENCY.anonymize),
      PUBLISH_CONCURRENCY: String(CONCURRENCY.publish),
      GOOGLE_RATE_LIMIT_PER_SECOND: '100000',
    },
    log: (m) => say(`• ${m}`),
  })
  const redis = createRedis(stack.redisUrl, 'producer', 'bench')
  await waitForRedis(redis)
  const peakRss = new Map<string, number>()
  const peakMemory = new Map<string, { heapUsed: number; heapTotal: number; external: number }>()
  const rssTimer = setInterval(() => {
    for (const service of stack.services) {
      scrape(service.url)
        .then((text) => {
          const rss = Number(/fitstream_process_resident_memory_bytes\{[^}]*\} (\d+)/.exec(text)?.[1] ?? 0)
          if (rss <= (peakRss.get(service.label) ?? 0)) return
          peakRss.set(service.label, rss)
          const read = (name: string): number => Number(new RegExp(`fitstream_${name}\\{[^}]*\\} (\\d+)`).exec(text)?.[1] ?? 0)
          peakMemory.set(service.label, {
            heapUsed: read('nodejs_heap_size_used_bytes'),
            heapTotal: read('nodejs_heap_size_total_bytes'),
            external: read('nodejs_external_memory_bytes'),
          })
        })
        .catch(() => undefined)
    }
  }, 500)

  try {
    const subscriber = await stack.startSubscriber()
    // Registration triggers an onboarding sync per user; hold those back so the runs start together.
    const sync = stack.queues().queue('sync')
    await sync.pause()
    const pacedCount = Math.max(20, Math.round(USERS / 4))
    const users: RegisteredUser[] = []
    for (let i = 0; i < USERS + pacedCount; i += 50) {
      users.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(50, USERS + pacedCount - i) }, (_, j) => stack.registerUser({ seed: `bench-${i + j}`, dataTypes: TYPES })),
        )),
      )
    }
    await sync.drain()
    say(`• registered ${users.length} users`)
    const burst = users.slice(0, USERS)
    const paced = users.slice(USERS)

    // Burst: every user's sync at once; the pipeline's maximum throughput.
    const callsBefore = await commandCalls(redis)
    const cpuBefore = cpuSnapshot(stack, subscriber, ownedRedis.pid)
    const t0 = Date.now()
    await stack.queues().addBulk(
      'sync',
      burst.map((u) => ({ data: { userId: u.userId, reason: 'manual' as const }, options: { jobId: `bench-burst-${u.userId}` } })),
    )
    await sync.resume()
    await settle(stack, () => subscriber.messages.length, 240_000)
    const burstMessages = subscriber.messages.filter((m) => m.receivedAt >= t0)
    const t1 = Math.max(...burstMessages.map((m) => m.receivedAt))
    const burstSeconds = (t1 - t0) / 1000
    const records = burstMessages.reduce((n, m) => n + recordsOf(m.content).length, 0)
    const commandsPerSync = (await commandCalls(redis)) - callsBefore
    // Average cores each process kept busy from the burst's start until it settled.
    const settledSeconds = (Date.now() - t0) / 1000
    const cpuAfter = cpuSnapshot(stack, subscriber, ownedRedis.pid)
    const cpuUsed = [...cpuAfter]
      .filter(([label]) => cpuBefore.has(label))
      .map(([label, seconds]): [string, number] => [label, seconds - cpuBefore.get(label)!])
    const cpuCores = Object.fromEntries(cpuUsed.map(([label, seconds]) => [label, round(seconds / settledSeconds, 2)]))
    // What a sync costs FitStream itself (its services and Redis), apart from the buyer and the fake
    // Google that share this machine: what sizing a deployment needs.
    const serviceLabels = new Set([...stack.services.map((s) => s.label), 'redis'])
    const fitstreamCpuMsPerSync = (cpuUsed.filter(([label]) => serviceLabels.has(label)).reduce((sum, [, s]) => sum + s, 0) * 1000) / burst.length
    say(`• burst: ${burst.length} syncs, ${burstMessages.length} messages, ${records} records in ${burstSeconds.toFixed(1)} s`)

    // Paced at half the burst's rate: the latency from a sync being scheduled to its data arriving.
    const rate = burst.length / burstSeconds / 2
    const pseudonymKey = Buffer.from(stack.secrets.PSEUDONYM_KEY, 'base64')
    const owner = new Map<string, number>()
    const months = [new Date(t0 - 86_400_000).toISOString().slice(0, 7), new Date(t0).toISOString().slice(0, 7)]
    paced.forEach((u, i) => months.forEach((m) => owner.set(pseudonymOf(pseudonymKey, u.userId, m), i)))
    const scheduledAt: number[] = []
    const pacedStart = Date.now()
    const interval = 1000 / rate
    for (let i = 0; i < paced.length; i++) {
      const due = pacedStart + i * interval
      if (due > Date.now()) await sleep(due - Date.now())
      scheduledAt[i] = Date.now()
      await stack.queues().add('sync', { userId: paced[i]!.userId, reason: 'manual' }, { jobId: `bench-paced-${paced[i]!.userId}` })
    }
    await settle(stack, () => subscriber.messages.length, 120_000)
    const lastArrival = new Map<number, number>()
    for (const m of subscriber.messages as ReceivedMessage[]) {
      // A release slot's message holds many people's records: each person's data arrives with their last one.
      for (const pseudonym of new Set(recordsOf(m.content).map((r) => r.pseudonym))) {
        const i = owner.get(pseudonym)
        if (i !== undefined) lastArrival.set(i, Math.max(lastArrival.get(i) ?? 0, m.receivedAt))
      }
    }
    const latencies = [...lastArrival].map(([i, at]) => at - scheduledAt[i]!).sort((a, b) => a - b)
    say(`• paced: ${paced.length} syncs at ${(1000 / interval).toFixed(1)}/s, data of ${lastArrival.size} arrived`)

    // Where the time goes, from each service's own histograms.
    const stageTime: Record<string, { jobs: number; meanMs: number }> = {}
    for (const service of stack.services) {
      const text = await scrape(service.url)
      for (const m of text.matchAll(/fitstream_job_duration_seconds_sum\{([^}]*)\} ([\d.e+-]+)/g)) {
        const labels = m[1]!
        const queue = /queue="([^"]+)"/.exec(labels)?.[1]
        if (queue === undefined || !labels.includes('outcome="completed"')) continue
        const count = Number(
          new RegExp(`fitstream_job_duration_seconds_count\\{${labels.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\} (\\d+)`).exec(text)?.[1] ?? 0,
        )
        const entry = stageTime[queue] ?? { jobs: 0, meanMs: 0 }
        const total = entry.meanMs * entry.jobs + Number(m[2]) * 1000
        entry.jobs += count
        entry.meanMs = entry.jobs === 0 ? 0 : total / entry.jobs
        stageTime[queue] = entry
      }
    }

    // Redis at rest: everything under the prefix, per registered user.
    await settle(stack, () => subscriber.messages.length, 60_000)
    const used = await redisBytesByKind(redis, stack.prefix)
    const queueBytes = [...used.kinds].filter(([kind]) => kind.startsWith('queue ')).reduce((sum, [, bytes]) => sum + bytes, 0)
    clearInterval(rssTimer)

    const pipeline = {
      userSyncsPerSecond: round(burst.length / burstSeconds),
      recordsPerSecond: round(records / burstSeconds),
      messagesPerSecond: round(burstMessages.length / burstSeconds),
      latencyMs: {
        at: 'half the maximum throughput',
        p50: percentile(latencies, 50),
        p95: percentile(latencies, 95),
        p99: percentile(latencies, 99),
        samples: latencies.length,
      },
      peakRssMb: Object.fromEntries([...peakRss].map(([k, v]) => [k, round(v / 1_048_576)])),
      // What the RSS was made of at its peak: V8's heap (used of allocated) and memory held outside it.
      memoryAtPeakMb: Object.fromEntries(
        [...peakMemory].map(([k, m]) => [
          k,
          { heapUsed: round(m.heapUsed / 1_048_576), heapAllocated: round(m.heapTotal / 1_048_576), external: round(m.external / 1_048_576) },
        ]),
      ),
      redisBytesPerUserAtRest: Math.round(used.total / users.length),
      // Queues at rest hold a bounded amount whatever the number of people (capped event streams, the
      // last 100 sync jobs); the rest is what each further person adds.
      redisQueueBytesAtRest: queueBytes,
      redisBytesPerUserBesideQueues: Math.round((used.total - queueBytes) / users.length),
      redisBytesPerUserByKind: Object.fromEntries([...used.kinds].map(([k, v]) => [k, Math.round(v / users.length)])),
      // The largest key shapes at rest (ids replaced by <id>), to tell what grows with users from what is capped.
      redisKeysAtRest: Object.fromEntries(
        [...used.shapes]
          .sort((a, b) => b[1].bytes - a[1].bytes)
          .slice(0, 20)
          .map(([shape, v]) => [shape, v]),
      ),
      redisCommandsPerSync: round(commandsPerSync / burst.length),
      // Where the machine's cores went during the burst: each process's average, in cores.
      cpuCoresDuringBurst: {
        ...cpuCores,
        total: round(
          Object.values(cpuCores).reduce((sum, c) => sum + c, 0),
          2,
        ),
      },
      fitstreamCpuMsPerSync: round(fitstreamCpuMsPerSync),
      stageMeanMs: Object.fromEntries(Object.entries(stageTime).map(([k, v]) => [k, round(v.meanMs)])),
    }
    await stack.stop()
    redis.disconnect()

    const baseline = await runBaseline(stack.redisUrl, burst.length)
    await ownedRedis.stop()
    const result = {
      date: new Date().toISOString(),
      cpus: cpus().length,
      users: burst.length,
      pacedUsers: paced.length,
      googleLatencyMs: LATENCY,
      publishSlotMs: PUBLISH_SLOT_MS,
      googleApi: GOOGLE_API,
      dataTypes: TYPES,
      concurrency: CONCURRENCY,
      pipeline,
      baseline: { jobsPerSecond: round(baseline) },
      ratio: round(pipeline.userSyncsPerSecond / baseline, 3),
      targets: {
        'throughput >= 25% of the baseline': pipeline.userSyncsPerSecond / baseline >= 0.25,
        // Records wait for their release slot (as in production, at the devstack's short slot) on top of the pipeline's 2 s.
        [`p99 latency < 2 s + the ${PUBLISH_SLOT_MS} ms release slot at half throughput`]: pipeline.latencyMs.p99 < 2000 + PUBLISH_SLOT_MS,
        'peak RSS < 200 MB per service': Object.values(pipeline.peakRssMb).every((mb) => mb < 200),
        'Redis < 2 KB per user at rest': pipeline.redisBytesPerUserAtRest < 2048,
      },
      durationSeconds: Math.round((Date.now() - startedAt) / 1000),
    }
    mkdirSync(`${root}bench/results`, { recursive: true })
    writeFileSync(`${root}bench/results/latest.json`, `${JSON.stringify(result, null, 2)}\n`)
    writeFileSync(`${root}docs/benchmarks.md`, markdown(result))
    say(JSON.stringify(result, null, 2))
  } finally {
    clearInterval(rssTimer)
    await stack.stop().catch(() => undefined)
    redis.disconnect()
    await ownedRedis.stop()
  }
}

/** The same four hops as raw BullMQ, no-op processors, one process per hop: jobs per second end to end. */
async function runBaseline(redisUrl: string, jobs: number): Promise<number> {
  const prefix = `bench-baseline-${process.pid}`
  const concurrency = [CONCURRENCY.sync, CONCURRENCY.fetch, CONCURRENCY.anonymize, CONCURRENCY.publish]
  const entry = fileURLToPath(new URL('./baseline-worker.js', import.meta.url))
  const workers: ChildProcess[] = concurrency.map((c, i) =>
    spawn(process.execPath, [entry, redisUrl, prefix, String(i + 1), String(c)], { stdio: ['ignore', 'pipe', 'inherit'] }),
  )
  await Promise.all(workers.map((w) => new Promise((resolve) => w.stdout!.once('data', resolve))))
  const redis = createRedis(redisUrl, 'producer', 'bench-baseline')
  const first = new Queue('hop1', { connection: redis, prefix })
  const payload = { userId: 'x'.repeat(22), reason: 'manual' }
  const t0 = Date.now()
  await first.addBulk(Array.from({ length: jobs }, () => ({ name: 'hop', data: payload, opts: { removeOnComplete: { count: 1000 }, attempts: 3 } })))
  // A hop's job stays active until it has added the next one, so all-empty means all done.
  const hops = [1, 2, 3, 4].map((i) => new Queue(`hop${i}`, { connection: redis, prefix }))
  for (;;) {
    const counts = await Promise.all(hops.map((q) => q.getJobCounts('waiting', 'active')))
    if (counts.every((c) => c.waiting === 0 && c.active === 0)) break
    await sleep(20)
  }
  const seconds = (Date.now() - t0) / 1000
  await Promise.all(workers.map((w) => new Promise((resolve) => (w.once('exit', resolve), w.kill('SIGTERM')))))
  for (const q of hops) {
    await q.obliterate({ force: true })
    await q.close()
  }
  await first.close()
  redis.disconnect()
  return jobs / seconds
}

function round(n: number, digits = 1): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

function markdown(
  r: {
    date: string
    cpus: number
    users: number
    googleLatencyMs: number
    publishSlotMs: number
    googleApi: string
    pipeline: Record<string, unknown>
    baseline: { jobsPerSecond: number }
    ratio: number
    targets: Record<string, boolean>
  } & Record<string, unknown>,
): string {
  const p = r.pipeline as {
    userSyncsPerSecond: number
    recordsPerSecond: number
    messagesPerSecond: number
    latencyMs: { p50: number; p95: number; p99: number }
    peakRssMb: Record<string, number>
    memoryAtPeakMb: Record<string, { heapUsed: number; heapAllocated: number; external: number }>
    redisBytesPerUserAtRest: number
    redisQueueBytesAtRest: number
    redisBytesPerUserBesideQueues: number
    redisBytesPerUserByKind: Record<string, number>
    redisCommandsPerSync: number
    stageMeanMs: Record<string, number>
    cpuCoresDuringBurst: Record<string, number>
    fitstreamCpuMsPerSync: number
  }
  const rows = [
    ['user-syncs/s', p.userSyncsPerSecond],
    ['records/s published', p.recordsPerSecond],
    ['messages/s published', p.messagesPerSecond],
    ['baseline: raw 4-hop BullMQ chain, jobs/s', r.baseline.jobsPerSecond],
    ['pipeline / baseline', r.ratio],
    ['latency p50 / p95 / p99, sync scheduled → message received (ms)', `${p.latencyMs.p50} / ${p.latencyMs.p95} / ${p.latencyMs.p99}`],
    [
      'peak RSS per service (MB)',
      Object.entries(p.peakRssMb)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    ],
    [
      'at each peak: V8 heap used / allocated, external (MB)',
      Object.entries(p.memoryAtPeakMb)
        .map(([k, m]) => `${k} ${m.heapUsed} / ${m.heapAllocated}, ${m.external}`)
        .join('; '),
    ],
    [
      'Redis per registered user at rest (bytes)',
      `${p.redisBytesPerUserAtRest} (${Object.entries(p.redisBytesPerUserByKind)
        .filter(([, v]) => v > 0)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
    ],
    [
      'of which queues, bounded whatever the number of users (bytes in all) / the rest, per user',
      `${p.redisQueueBytesAtRest} / ${p.redisBytesPerUserBesideQueues}`,
    ],
    ['Redis commands per sync', p.redisCommandsPerSync],
    [
      `CPU during the burst, cores busy on average (of ${r.cpus})`,
      Object.entries(p.cpuCoresDuringBurst)
        .sort((a, b) => (a[0] === 'total' ? 1 : b[0] === 'total' ? -1 : b[1] - a[1]))
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    ],
    ['CPU per sync spent by FitStream (its services and Redis; ms)', p.fitstreamCpuMsPerSync],
    [
      'mean processing time per job (ms)',
      Object.entries(p.stageMeanMs)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    ],
  ]
  return `# Benchmarks

\`npm run bench\` on ${r.cpus} CPUs, ${r.users} users with a day of hourly data in 5 types read from the ${r.googleApi === 'health' ? 'Google Health API (a request per type)' : 'Google Fit API (a request for all 5)'}, the fake Google answering after ${r.googleLatencyMs} ms,
${r.publishSlotMs > 0 ? `the publisher in ${r.publishSlotMs} ms release slots` : 'the publisher publishing each job as it comes (no release slots)'}, a local Streamr network and a subscriber receiving everything; latest run ${r.date}.

| measure | value |
| --- | --- |
${rows.map(([k, v]) => `| ${k} | ${v} |`).join('\n')}

| target | met |
| --- | --- |
${Object.entries(r.targets)
  .map(([k, v]) => `| ${k} | ${v ? 'yes' : '**no**'} |`)
  .join('\n')}

Raw figures: \`bench/results/latest.json\`. Where targets are missed and why: [benchmark-analysis.md](benchmark-analysis.md).
`
}

await main()
