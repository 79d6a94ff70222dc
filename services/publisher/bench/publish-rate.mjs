// Messages/s and records/s of one publisher process against a local Streamr network, with a
// buyer subscribed (so every message is encrypted and delivered). Needs Redis and a build:
//   npx tsc -b services/publisher packages/devstack && node services/publisher/bench/publish-rate.mjs [jobs]
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { ServiceProcess, Subscriber } from '@fitstream/devstack'
import { StageQueues, commonEnv, createLogger, createRedis, deleteKeysWithPrefix, parseEnv, retryPolicies } from '@fitstream/shared'
import { freePort, startLocalStreamrNetwork } from '@fitstream/streamr-local'

const jobs = Number(process.argv[2] ?? 300)
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = `bench-publisher-${randomBytes(4).toString('hex')}`
const say = (line) => process.stdout.write(`${line}\n`)
const dataDir = mkdtempSync(join(tmpdir(), 'fitstream-bench-'))
const network = await startLocalStreamrNetwork()
const [seller, buyer] = [network.accounts[1], network.accounts[2]]
const ep = network.entryPoint
const env = {
  STREAMR_PRIVATE_KEY: seller.privateKey,
  STREAMR_ENVIRONMENT: 'dev2',
  STREAMR_ENTRY_POINTS: `${ep.nodeId}@ws://${ep.websocket.host}:${ep.websocket.port}`,
  STREAMR_RPC_URL: network.rpcUrl,
  STREAMR_CHAIN_ID: String(network.chainId),
  STREAMR_STREAM_REGISTRY_ADDRESS: network.streamRegistryAddress,
  STREAMR_THE_GRAPH_URL: 'http://127.0.0.1:1/unused',
  STREAMR_WEBSOCKET_HOST: '127.0.0.1',
  REDIS_URL: redisUrl,
  QUEUE_PREFIX: prefix,
  LOG_LEVEL: 'warn',
  XDG_DATA_HOME: dataDir,
}
const types = ['steps', 'calories', 'heart_rate']
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
await promisify(execFile)(process.execPath, [cli, 'streams', 'provision', '--types', types.join(','), '--no-cohorts', '--grant-subscribe', buyer.address], {
  env: { PATH: process.env.PATH, ...env, STREAMR_WEBSOCKET_PORT: String(await freePort()) },
})
const streams = types.map((t) => `${seller.address.toLowerCase()}/fitness/${t}`)
const subscriber = await Subscriber.start(await network.clientConfig({ privateKey: buyer.privateKey }), streams, {
  XDG_DATA_HOME: mkdtempSync(join(tmpdir(), 'fitstream-bench-sub-')),
})
const publisher = new ServiceProcess({ name: 'publisher', port: await freePort(), env: { ...env, STREAMR_WEBSOCKET_PORT: String(await freePort()) } })
publisher.start()
await publisher.waitReady()
const redis = createRedis(redisUrl, 'producer', 'bench')
const queues = new StageQueues({ connection: redis, prefix, retry: retryPolicies(parseEnv(commonEnv, {})), logger: createLogger('bench', 'silent') })

const hex = (n) => randomBytes(n).toString('hex')
// One user's hourly sync of a day: 24 records of each of three types, one message per type.
const job = () => {
  const pseudonym = hex(16)
  const t0 = Date.UTC(2026, 10, 1)
  return {
    syncId: `bench-${hex(6)}`,
    cohorts: [],
    records: types.flatMap((type) =>
      Array.from({ length: 24 }, (_, h) => ({
        id: hex(16),
        type,
        pseudonym,
        epoch: '2026-11',
        values: { count: 100 + h },
        unit: 'u',
        revision: 0,
        start: new Date(t0 + h * 3_600_000).toISOString(),
        end: new Date(t0 + (h + 1) * 3_600_000).toISOString(),
      })),
    ),
  }
}

try {
  // A warm-up job joins the stream parts and runs the first key exchange.
  await queues.add('publish', job(), { jobId: 'warm-up' })
  await subscriber.waitFor((m) => m.length >= 3, 60_000)
  const already = subscriber.messages.length
  const payloads = Array.from({ length: jobs }, job)
  const started = performance.now()
  await queues.addBulk(
    'publish',
    payloads.map((data, i) => ({ data, options: { jobId: `bench-${i}` } })),
  )
  const expected = jobs * types.length
  const queue = queues.queue('publish')
  for (;;) {
    const completed = await queue.getCompletedCount()
    if (completed >= jobs + 1) break
    if ((await queue.getFailedCount()) > 0) throw new Error('a publish job failed')
    await new Promise((r) => setTimeout(r, 50))
  }
  const seconds = (performance.now() - started) / 1000
  await subscriber.waitFor((m) => m.length - already >= expected, 60_000)
  const deliveredSeconds = (performance.now() - started) / 1000
  const records = jobs * 72
  say(`${jobs} jobs, ${expected} messages, ${records} records, PUBLISH_CONCURRENCY 4, one publisher process`)
  say(`published in ${seconds.toFixed(2)} s: ${(expected / seconds).toFixed(0)} messages/s, ${(records / seconds).toFixed(0)} records/s`)
  say(`all received by the subscriber after ${deliveredSeconds.toFixed(2)} s`)
} finally {
  await publisher.stop()
  await subscriber.stop()
  await queues.close()
  await deleteKeysWithPrefix(redis, prefix)
  redis.disconnect()
  await network.stop()
  rmSync(dataDir, { recursive: true, force: true })
}
