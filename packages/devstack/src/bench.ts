import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Job, Queue, QueueEvents } from 'bullmq'
import type { Redis } from 'ioredis'
import { GOOGLE_DATA_APIS, createRedis, pseudonymOf, waitForRedis, type DataTypeKey, type GoogleDataApi } from '@fitstream/shared'
import { evaluateTargets, textTable, type TargetRow } from './bench-targets.js'
import { imageEnvironment } from './image-env.js'
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
    /** Users of each scale-out burst (1, 2 and 4 fetchers, then a second publisher); default a quarter of --users, 0 skips them. */
    'scale-out-users': { type: 'string', default: process.env.BENCH_SCALE_OUT_USERS },
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
const SCALE_OUT_USERS = values['scale-out-users'] === undefined ? Math.max(50, Math.round(USERS / 4)) : Number(values['scale-out-users'])
/** The scale-out steps, in order: each adds processes to the running stack. */
const SCALE_OUT_STEPS = [
  { fetchers: 1, publishers: 1 },
  { fetchers: 2, publishers: 1 },
  { fetchers: 4, publishers: 1 },
  { fetchers: 4, publishers: 2 },
] as const
const LATENCY = Number(values.latency)
const TYPES: DataTypeKey[] = ['steps', 'calories', 'heart_rate', 'active_minutes', 'heart_minutes']
/** Each stage's concurrency, the same for the pipeline and the baseline. */
const CONCURRENCY = { sync: 50, fetch: 100, anonymize: 16, publish: 16 }
const root = fileURLToPath(new URL('../../../', import.meta.url))
const say = (line: string): void => void process.stdout.write(`${line}\n`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Redis's calls per command so far (commands run by Lua scripts included). */
async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info('commandstats')
  return new Map([...info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]))
}

const totalCalls = (calls: Map<string, number>): number => [...calls.values()].reduce((n, c) => n + c, 0)

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

/** CPU seconds the given processes used between two snapshots. */
function cpuSecondsBetween(before: Map<string, number>, after: Map<string, number>, labels: ReadonlySet<string>): number {
  return [...after].filter(([label]) => labels.has(label) && before.has(label)).reduce((sum, [label, s]) => sum + s - before.get(label)!, 0)
}

/** FitStream's own processes: its services and Redis (not the buyer, the fake Google or this process). */
function fitstreamLabels(stack: Stack): Set<string> {
  return new Set([...stack.services.map((s) => s.label), 'redis'])
}

/** Registers `count` users seeded `<seed>-<n>`, fifty at a time. */
async function registerUsers(stack: Stack, seed: string, count: number): Promise<RegisteredUser[]> {
  const users: RegisteredUser[] = []
  for (let i = 0; i < count; i += 50) {
    users.push(
      ...(await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, j) => stack.registerUser({ seed: `${seed}-${i + j}`, dataTypes: TYPES })))),
    )
  }
  return users
}

/** The id a sync job's records carry through the pipeline (as the token service's sync processor derives it). */
function syncIdOf(syncJobId: string): string {
  return createHash('sha256').update(syncJobId).digest('base64url').slice(0, 16)
}

interface ScaleOutRow {
  readonly fetchers: number
  readonly publishers: number
  readonly users: number
  readonly userSyncsPerSecond: number
  readonly fitstreamCpuMsPerSync: number
}

/**
 * One scale-out row: `count` new users synced all at once on the stack as it runs now; their
 * user-syncs per second (to the last message the buyer receives) and FitStream's CPU per sync.
 */
async function scaleOutBurst(stack: Stack, subscriber: Subscriber, redisPid: number | undefined, seed: string, count: number) {
  const sync = stack.queues().queue('sync')
  await sync.pause()
  const users = await registerUsers(stack, seed, count)
  await sync.drain()
  const before = cpuSnapshot(stack, subscriber, redisPid)
  const t0 = Date.now()
  await stack.queues().addBulk(
    'sync',
    users.map((u) => ({ data: { userId: u.userId, reason: 'manual' as const }, options: { jobId: `bench-${seed}-${u.userId}` } })),
  )
  await sync.resume()
  await settle(stack, () => subscriber.messages.length, 180_000)
  const after = cpuSnapshot(stack, subscriber, redisPid)
  const t1 = Math.max(...subscriber.messages.filter((m) => m.receivedAt >= t0).map((m) => m.receivedAt))
  return {
    users: count,
    userSyncsPerSecond: round(count / ((t1 - t0) / 1000)),
    fitstreamCpuMsPerSync: round((cpuSecondsBetween(before, after, fitstreamLabels(stack)) * 1000) / count),
  }
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
      // The services run as the image runs them (heap flags, malloc arenas, the SDK's JSON logs);
      // BENCH_NODE_OPTIONS tries other node flags.
      ...imageEnvironment(),
      ...(process.env.BENCH_NODE_OPTIONS === undefined ? {} : { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS }),
      LOG_LEVEL: 'warn',
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
    const users = await registerUsers(stack, 'bench', USERS + pacedCount)
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
    const callsAfter = await commandCalls(redis)
    const commandsPerSync = totalCalls(callsAfter) - totalCalls(callsBefore)
    // Which commands a sync costs, the most frequent first: where the count can come down.
    const commandsByName = [...callsAfter]
      .map(([name, calls]): [string, number] => [name, round((calls - (callsBefore.get(name) ?? 0)) / burst.length, 1)])
      .filter(([, perSync]) => perSync >= 0.5)
      .sort((a, b) => b[1] - a[1])
    // Average cores each process kept busy from the burst's start until it settled.
    const settledSeconds = (Date.now() - t0) / 1000
    const cpuAfter = cpuSnapshot(stack, subscriber, ownedRedis.pid)
    const cpuUsed = [...cpuAfter]
      .filter(([label]) => cpuBefore.has(label))
      .map(([label, seconds]): [string, number] => [label, seconds - cpuBefore.get(label)!])
    const cpuCores = Object.fromEntries(cpuUsed.map(([label, seconds]) => [label, round(seconds / settledSeconds, 2)]))
    // What a sync costs FitStream itself (its services and Redis), apart from the buyer and the fake
    // Google that share this machine: what sizing a deployment needs.
    const fitstreamCpuMsPerSync = (cpuSecondsBetween(cpuBefore, cpuAfter, fitstreamLabels(stack)) * 1000) / burst.length
    // The same per process: where a sync's CPU goes.
    const ownLabels = fitstreamLabels(stack)
    const cpuMsPerSyncByProcess = Object.fromEntries(
      cpuUsed.filter(([label]) => ownLabels.has(label)).map(([label, seconds]) => [label, round((seconds * 1000) / burst.length, 2)]),
    )
    say(`• burst: ${burst.length} syncs, ${burstMessages.length} messages, ${records} records in ${burstSeconds.toFixed(1)} s`)

    // Paced at half the burst's rate: the latency from a sync being scheduled to its data arriving.
    const rate = burst.length / burstSeconds / 2
    const pseudonymKey = Buffer.from(stack.secrets.PSEUDONYM_KEY, 'base64')
    const owner = new Map<string, number>()
    const months = [new Date(t0 - 86_400_000).toISOString().slice(0, 7), new Date(t0).toISOString().slice(0, 7)]
    paced.forEach((u, i) => months.forEach((m) => owner.set(pseudonymOf(pseudonymKey, u.userId, m), i)))
    // When each person's records were held for their release slot (ready), and for which slot: from
    // the publish queue's events, matched to the person by the sync id their records carry. A publish
    // job is deleted once done, so its sync id is read while it waits or runs.
    const pacedBySyncId = new Map<string, number>()
    const publishQueue = stack.queues().queue('publish')
    const eventsRedis = createRedis(stack.redisUrl, 'worker', 'bench-publish-events')
    const publishEvents = new QueueEvents(publishQueue.name, {
      connection: eventsRedis,
      ...(publishQueue.opts.prefix === undefined ? {} : { prefix: publishQueue.opts.prefix }),
    })
    publishEvents.on('error', (err) => say(`• publish queue events: ${err.message}`))
    const personOfJob = new Map<string, number>()
    const lookups: Promise<void>[] = []
    const lookUp = ({ jobId }: { jobId: string }): void => {
      if (personOfJob.has(jobId)) return
      lookups.push(
        Job.fromId(publishQueue, jobId)
          .then((job) => {
            const i = job === undefined ? undefined : pacedBySyncId.get(job.data.syncId)
            if (i !== undefined) personOfJob.set(jobId, i)
          })
          .catch(() => undefined),
      )
    }
    publishEvents.on('added', lookUp)
    publishEvents.on('active', lookUp)
    const completions: { jobId: string; at: number; heldFor: number | undefined }[] = []
    publishEvents.on('completed', ({ jobId, returnvalue }, id) => {
      const result = (typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as { heldFor?: number } | null
      // The event's stream id starts with the time Redis wrote it.
      completions.push({ jobId, at: Number(id.split('-')[0]), heldFor: result?.heldFor })
    })
    await publishEvents.waitUntilReady()
    const scheduledAt: number[] = []
    const pacedStart = Date.now()
    const interval = 1000 / rate
    for (let i = 0; i < paced.length; i++) {
      const due = pacedStart + i * interval
      if (due > Date.now()) await sleep(due - Date.now())
      scheduledAt[i] = Date.now()
      const job = await stack.queues().add('sync', { userId: paced[i]!.userId, reason: 'manual' }, { jobId: `bench-paced-${paced[i]!.userId}` })
      // The queue stores the job under an id that does not name the person: the sync id comes from that one.
      pacedBySyncId.set(syncIdOf(job.id!), i)
    }
    await settle(stack, () => subscriber.messages.length, 120_000)
    await Promise.all(lookups)
    // A connection handed to BullMQ stays open when it closes.
    await publishEvents.close()
    eventsRedis.disconnect()
    const readyAt = new Map<number, number>()
    const readyToSlot = new Map<number, number>()
    for (const { jobId, at, heldFor } of completions) {
      const i = personOfJob.get(jobId)
      if (i === undefined) continue
      readyAt.set(i, Math.max(readyAt.get(i) ?? 0, at))
      if (heldFor !== undefined) readyToSlot.set(i, Math.max(readyToSlot.get(i) ?? 0, heldFor - at))
    }
    const lastArrival = new Map<number, { at: number; slot: number }>()
    for (const m of subscriber.messages as ReceivedMessage[]) {
      // A release slot's message holds many people's records: each person's data arrives with their last one.
      for (const pseudonym of new Set(recordsOf(m.content).map((r) => r.pseudonym))) {
        const i = owner.get(pseudonym)
        // Every message of a slot goes out under the slot's time.
        if (i !== undefined && m.receivedAt > (lastArrival.get(i)?.at ?? 0)) lastArrival.set(i, { at: m.receivedAt, slot: m.timestamp })
      }
    }
    const sorted = (values: Iterable<number>): number[] => [...values].sort((a, b) => a - b)
    const spread = (ms: number[]) => ({ p50: percentile(ms, 50), p95: percentile(ms, 95), p99: percentile(ms, 99), samples: ms.length })
    const latencies = sorted([...lastArrival].map(([i, { at }]) => at - scheduledAt[i]!))
    const slotToBuyer = sorted([...lastArrival.values()].map(({ at, slot }) => at - slot))
    const syncToReady = sorted([...readyAt].map(([i, at]) => at - scheduledAt[i]!))
    // Sync to buyer with the release slot's wait taken out, per person: what the latency target is about.
    const withoutSlotWait = sorted([...lastArrival].filter(([i]) => readyToSlot.has(i)).map(([i, { at }]) => at - scheduledAt[i]! - readyToSlot.get(i)!))
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
        ...spread(latencies),
        // The parts of it: sync to the records held for their slot (ready), ready to the slot, the slot to the buyer.
        syncToReady: spread(syncToReady),
        readyToSlot: spread(sorted(readyToSlot.values())),
        slotToBuyer: spread(slotToBuyer),
        withoutSlotWait: spread(withoutSlotWait),
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
      redisCommandsPerSyncByName: Object.fromEntries(commandsByName),
      // Where the machine's cores went during the burst: each process's average, in cores.
      cpuCoresDuringBurst: {
        ...cpuCores,
        total: round(
          Object.values(cpuCores).reduce((sum, c) => sum + c, 0),
          2,
        ),
      },
      fitstreamCpuMsPerSync: round(fitstreamCpuMsPerSync),
      fitstreamCpuMsPerSyncByProcess: cpuMsPerSyncByProcess,
      stageMeanMs: Object.fromEntries(Object.entries(stageTime).map(([k, v]) => [k, round(v.meanMs)])),
    }

    // Scale-out: shorter bursts of new users, adding fetchers and then a publisher to the running stack.
    const scaleOut: ScaleOutRow[] = []
    let fetchers = 1
    let publishers = 1
    for (const [n, step] of (SCALE_OUT_USERS > 0 ? SCALE_OUT_STEPS : []).entries()) {
      while (fetchers < step.fetchers) await stack.addService('fetcher', `fetcher-${++fetchers}`)
      while (publishers < step.publishers) await stack.addService('publisher', `publisher-${++publishers}`)
      const row = { ...step, ...(await scaleOutBurst(stack, subscriber, ownedRedis.pid, `scale-${n}`, SCALE_OUT_USERS)) }
      say(
        `• scale-out: ${row.fetchers} fetchers, ${row.publishers} publishers: ${row.userSyncsPerSecond} user-syncs/s, ${row.fitstreamCpuMsPerSync} ms CPU a sync`,
      )
      scaleOut.push(row)
    }
    await stack.stop()
    redis.disconnect()

    const baseline = await runBaseline(stack.redisUrl, burst.length, ownedRedis.pid)
    await ownedRedis.stop()
    const targets = evaluateTargets({
      fitstreamCpuMsPerSync: pipeline.fitstreamCpuMsPerSync,
      redisCommandsPerSync: pipeline.redisCommandsPerSync,
      redisBytesPerUserAtRest: pipeline.redisBytesPerUserAtRest,
      p99SyncToBuyerWithoutSlotWaitMs: pipeline.latencyMs.withoutSlotWait.p99,
      peakRssMb: pipeline.peakRssMb,
    })
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
      baseline: {
        jobsPerSecond: round(baseline.jobsPerSecond),
        // The chain's four processes and Redis, measured as FitStream's services and Redis are.
        cpuMsPerChain: round(baseline.cpuMsPerChain, 2),
        // BullMQ's own commands for four hops of a job (the polling of getJobCounts included): the
        // floor under FitStream's commands per sync, which has the same four hops.
        redisCommandsPerChain: round(baseline.redisCommandsPerChain),
        cpuCoresDuringRun: baseline.cpuCores,
      },
      ratio: round(pipeline.userSyncsPerSecond / baseline.jobsPerSecond, 3),
      // FitStream's CPU per user-sync over the raw chain's per chain: how many chains' worth of CPU a sync costs.
      cpuRatio: round(pipeline.fitstreamCpuMsPerSync / baseline.cpuMsPerChain, 1),
      targets,
      scaleOut,
      durationSeconds: Math.round((Date.now() - startedAt) / 1000),
    }
    mkdirSync(`${root}bench/results`, { recursive: true })
    writeFileSync(`${root}bench/results/latest.json`, `${JSON.stringify(result, null, 2)}\n`)
    writeFileSync(`${root}docs/benchmarks.md`, markdown(result))
    say(JSON.stringify(result, null, 2))
    say(report(result))
  } finally {
    clearInterval(rssTimer)
    await stack.stop().catch(() => undefined)
    redis.disconnect()
    await ownedRedis.stop()
  }
}

/** The same four hops as raw BullMQ, no-op processors, one process per hop: jobs per second end to end. */
async function runBaseline(
  redisUrl: string,
  jobs: number,
  redisPid: number | undefined,
): Promise<{ jobsPerSecond: number; cpuMsPerChain: number; redisCommandsPerChain: number; cpuCores: Record<string, number> }> {
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
  const cpuOfChain = (): Map<string, number> =>
    new Map(
      [
        ...workers.map((w, i): [string, number | undefined] => [`hop ${i + 1}`, cpuSecondsOf(w.pid)]),
        ['redis', cpuSecondsOf(redisPid)] as [string, number | undefined],
      ].filter((e): e is [string, number] => e[1] !== undefined),
    )
  const cpuBefore = cpuOfChain()
  const callsBefore = totalCalls(await commandCalls(redis))
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
  const callsAfter = totalCalls(await commandCalls(redis))
  const cpuAfter = cpuOfChain()
  const used = [...cpuAfter].filter(([label]) => cpuBefore.has(label)).map(([label, s]): [string, number] => [label, s - cpuBefore.get(label)!])
  await Promise.all(workers.map((w) => new Promise((resolve) => (w.once('exit', resolve), w.kill('SIGTERM')))))
  for (const q of hops) {
    await q.obliterate({ force: true })
    await q.close()
  }
  await first.close()
  redis.disconnect()
  return {
    jobsPerSecond: jobs / seconds,
    cpuMsPerChain: (used.reduce((sum, [, s]) => sum + s, 0) * 1000) / jobs,
    redisCommandsPerChain: (callsAfter - callsBefore) / jobs,
    cpuCores: Object.fromEntries(used.map(([label, s]) => [label, round(s / seconds, 2)])),
  }
}

/** The run in short, printed at the end: the CPU ratio, the targets with met or missed, the scale-out rows. */
function report(r: {
  cpus: number
  pipeline: {
    userSyncsPerSecond: number
    fitstreamCpuMsPerSync: number
    fitstreamCpuMsPerSyncByProcess: Record<string, number>
    redisCommandsPerSync: number
    cpuCoresDuringBurst: Record<string, number>
    latencyMs: Record<'syncToReady' | 'readyToSlot' | 'slotToBuyer' | 'withoutSlotWait', { p50: number; p99: number }> & { p50: number; p99: number }
  }
  baseline: { jobsPerSecond: number; cpuMsPerChain: number; redisCommandsPerChain: number; cpuCoresDuringRun: Record<string, number> }
  ratio: number
  cpuRatio: number
  targets: TargetRow[]
  scaleOut: ScaleOutRow[]
  durationSeconds: number
}): string {
  const p = r.pipeline
  const l = p.latencyMs
  const cores = (c: Record<string, number>): string =>
    Object.entries(c)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')
  const measures = textTable(
    ['measure', 'FitStream', 'raw 4-hop BullMQ chain', 'FitStream / chain'],
    [
      ['throughput (user-syncs/s, chains/s)', String(p.userSyncsPerSecond), String(r.baseline.jobsPerSecond), String(r.ratio)],
      ['CPU per user-sync / per chain (ms, services and Redis)', String(p.fitstreamCpuMsPerSync), String(r.baseline.cpuMsPerChain), String(r.cpuRatio)],
      [
        'Redis commands per user-sync / per chain',
        String(p.redisCommandsPerSync),
        String(r.baseline.redisCommandsPerChain),
        String(round(p.redisCommandsPerSync / r.baseline.redisCommandsPerChain, 1)),
      ],
    ],
  )
  const latency = textTable(
    ['latency at half throughput (ms)', 'p50', 'p99'],
    [
      ['sync to buyer', String(l.p50), String(l.p99)],
      ['  sync to ready (held for a slot)', String(l.syncToReady.p50), String(l.syncToReady.p99)],
      ['  ready to slot (the slot wait)', String(l.readyToSlot.p50), String(l.readyToSlot.p99)],
      ['  slot to buyer', String(l.slotToBuyer.p50), String(l.slotToBuyer.p99)],
      ['sync to buyer without the slot wait', String(l.withoutSlotWait.p50), String(l.withoutSlotWait.p99)],
    ],
  )
  const targets = textTable(
    ['target', 'measured', 'target', 'met'],
    r.targets.map((t) => [t.target, t.measured, t.limit, t.met ? 'met' : 'MISSED']),
  )
  const scaleOut = textTable(
    ['fetchers', 'publishers', 'users', 'user-syncs/s', 'CPU ms/sync'],
    r.scaleOut.map((s) => [String(s.fetchers), String(s.publishers), String(s.users), String(s.userSyncsPerSecond), String(s.fitstreamCpuMsPerSync)]),
  )
  return [
    '',
    measures,
    '',
    `CPU per user-sync by process (ms): ${Object.entries(p.fitstreamCpuMsPerSyncByProcess)
      .map(([label, ms]) => `${label} ${ms}`)
      .join(', ')}`,
    `cores busy during the burst (of ${r.cpus}): ${cores(p.cpuCoresDuringBurst)}`,
    `cores busy during the raw chain: ${cores(r.baseline.cpuCoresDuringRun)}`,
    '',
    latency,
    '',
    targets,
    '',
    r.scaleOut.length === 0 ? 'scale-out: skipped (--scale-out-users 0)' : scaleOut,
    '',
    `total duration: ${r.durationSeconds} s`,
  ].join('\n')
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
    baseline: { jobsPerSecond: number; cpuMsPerChain: number; redisCommandsPerChain: number }
    ratio: number
    cpuRatio: number
    targets: TargetRow[]
    scaleOut: ScaleOutRow[]
  } & Record<string, unknown>,
): string {
  const p = r.pipeline as {
    userSyncsPerSecond: number
    recordsPerSecond: number
    messagesPerSecond: number
    latencyMs: { p50: number; p95: number; p99: number; readyToSlot: { p99: number }; slotToBuyer: { p99: number } }
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
    ['latency p99: ready → release slot / slot → message received (ms)', `${p.latencyMs.readyToSlot.p99} / ${p.latencyMs.slotToBuyer.p99}`],
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
    ['Redis commands per chain of the raw four-hop BullMQ chain', r.baseline.redisCommandsPerChain],
    [
      `CPU during the burst, cores busy on average (of ${r.cpus})`,
      Object.entries(p.cpuCoresDuringBurst)
        .sort((a, b) => (a[0] === 'total' ? 1 : b[0] === 'total' ? -1 : b[1] - a[1]))
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    ],
    ['CPU per sync spent by FitStream (its services and Redis; ms)', p.fitstreamCpuMsPerSync],
    ['CPU per chain spent by the raw chain (its four processes and Redis; ms) / FitStream per sync over it', `${r.baseline.cpuMsPerChain} / ${r.cpuRatio}`],
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

| target | measured | target | met |
| --- | --- | --- | --- |
${r.targets.map((t) => `| ${t.target} | ${t.measured} | ${t.limit} | ${t.met ? 'met' : '**missed**'} |`).join('\n')}

| fetchers | publishers | users | user-syncs/s | FitStream CPU per sync (ms) |
| --- | --- | --- | --- | --- |
${r.scaleOut.map((s) => `| ${s.fetchers} | ${s.publishers} | ${s.users} | ${s.userSyncsPerSecond} | ${s.fitstreamCpuMsPerSync} |`).join('\n')}

Raw figures: \`bench/results/latest.json\`. Where targets are missed and why: [benchmark-analysis.md](benchmark-analysis.md).
`
}

await main()
