import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '@fitstream/streamr-local'
import { createRedis, keySlot, scanKeys, scanTargets, type DataTypeKey, type RedisConnection } from '@fitstream/shared'
import { DeliveryCheck } from './delivery.js'
import { uniquePrefix } from './helpers.js'

/**
 * FitStream on a Redis Cluster of three masters (redis-server --cluster-enabled, made one cluster by
 * `redis-cli --cluster create`): the whole pipeline runs against it with REDIS_CLUSTER_NODES, and a
 * buyer gets every record once. A script or transaction whose keys spanned slots would fail here with
 * CROSSSLOT; the keys must also really be spread over the masters, not all behind one hash tag.
 * Needs redis-server and redis-cli on the PATH: skipped without them, except in CI (.ci/run sets
 * FITSTREAM_REQUIRE_CLUSTER=1), where a missing redis-server is a failure.
 */
const run = promisify(execFile)
const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0
const TYPES: DataTypeKey[] = ['steps']

interface ClusterNode {
  readonly port: number
  readonly busPort: number
}

let dir: string
let nodes: ClusterNode[] = []
let check: DeliveryCheck | undefined
let redis: RedisConnection | undefined

async function cli(port: number, ...args: string[]): Promise<string> {
  return (await run('redis-cli', ['-p', String(port), ...args])).stdout
}

/** Three cluster-enabled redis-servers on free ports (their bus ports too), made one cluster of three masters. */
async function startCluster(): Promise<ClusterNode[]> {
  dir = mkdtempSync(join(tmpdir(), 'fitstream-cluster-'))
  const started: ClusterNode[] = []
  for (let i = 0; i < 3; i++) {
    const node = { port: await freePort(), busPort: await freePort() }
    await run('redis-server', [
      ...['--port', String(node.port), '--cluster-port', String(node.busPort), '--bind', '127.0.0.1'],
      ...['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${node.port}.conf`), '--dir', dir],
      ...['--save', '', '--appendonly', 'no', '--daemonize', 'yes'],
      ...['--pidfile', join(dir, `${node.port}.pid`), '--logfile', join(dir, `${node.port}.log`)],
    ])
    started.push(node)
    nodes = started
  }
  for (const node of started) await waitFor(async () => (await cli(node.port, 'ping').catch(() => '')).trim() === 'PONG', 'a node answering')
  await run('redis-cli', ['--cluster', 'create', ...started.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'])
  for (const node of started) await waitFor(async () => (await cli(node.port, 'cluster', 'info')).includes('cluster_state:ok'), 'cluster_state:ok')
  return started
}

async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await condition()) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`the cluster never reached ${what}`)
}

describe.runIf(hasRedisServer || process.env.FITSTREAM_REQUIRE_CLUSTER === '1')('FitStream on a Redis Cluster', () => {
  let prefix: string

  beforeAll(async () => {
    const cluster = await startCluster()
    const clusterNodes = cluster.map((node) => `127.0.0.1:${node.port}`)
    prefix = uniquePrefix('cluster')
    check = await DeliveryCheck.start({
      redisUrl: `redis://127.0.0.1:${cluster[0]!.port}`,
      redisClusterNodes: clusterNodes,
      prefix,
      dataTypes: TYPES,
      backfillDays: 1,
    })
    redis = createRedis({ url: `redis://127.0.0.1:${cluster[0]!.port}`, clusterNodes }, 'producer', 'cluster-test')
  })

  afterAll(async () => {
    redis?.disconnect()
    await check?.stack.stop()
    for (const node of nodes) await cli(node.port, 'shutdown', 'nosave').catch(() => '')
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  it('delivers every record of a person exactly once, with the keys spread over the masters', async () => {
    const stack = check!.stack
    check!.add(await stack.registerUser({ seed: 'cluster-user-1', dataTypes: TYPES }), await stack.registerUser({ seed: 'cluster-user-2', dataTypes: TYPES }))
    const report = await check!.waitComplete(120_000)
    expect(report.expected).toBeGreaterThan(10)
    expect(report).toMatchObject({ usersComplete: 2, received: report.expected, distinct: report.expected, duplicates: 0, unexpected: 0 })

    // Every master holds some of the deployment's keys, and each key is where our slot rule says.
    const perMaster: { port: number; keys: number }[] = []
    for (const node of scanTargets(redis!)) {
      const keys: string[] = []
      let cursor = '0'
      do {
        const [next, found] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
        cursor = next
        keys.push(...found)
      } while (cursor !== '0')
      perMaster.push({ port: node.options.port!, keys: keys.length })
      for (const key of keys.slice(0, 20)) expect(Number(await node.cluster('KEYSLOT', key))).toBe(keySlot(key))
    }
    process.stdout.write(`keys per master: ${JSON.stringify(perMaster)}\n`)
    expect(perMaster).toHaveLength(3)
    expect(perMaster.filter((master) => master.keys > 0).length).toBeGreaterThan(1)
  })

  it('reports and erases a person across the stores, their keys gone from every master', async () => {
    const stack = check!.stack
    const [person] = check!.users
    const report = (await stack.api('GET', `/users/${person!.userId}/privacy`)).body as { totals: { recordsReleased: number } }
    expect(report.totals.recordsReleased).toBeGreaterThan(0)
    const erased = await stack.api('DELETE', `/users/${person!.userId}`)
    expect(erased.status).toBe(200)
    const receipt = erased.body as { byOwner: { owner: string; outcome: string }[] }
    expect(receipt.byOwner.find((o) => o.owner === 'token-service')?.outcome).toBe('deleted')
    await expect.poll(async () => stack.queues().queueNamed('anonymizer-erasure').count(), { timeout: 30_000 }).toBe(0)
    const naming: string[] = []
    for await (const keys of scanKeys(redis!, `${prefix}:*`)) naming.push(...keys.filter((key) => key.includes(person!.userId)))
    expect(naming).toEqual([])
    expect((await stack.api('GET', `/users/${person!.userId}`)).status).toBe(404)
  })
})
