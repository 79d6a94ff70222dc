import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LocalRedisCluster, Stack, hasRedisServer, type RegisteredUser } from '@fitstream/devstack'
import { STAGE_NAMES, createRedis, deleteKeysWithPrefix, keySlot, scanKeys, scanTargets, type DataTypeKey, type RedisConnection } from '@fitstream/shared'
import { DeliveryCheck } from './delivery.js'
import { redisUrl, uniquePrefix } from './helpers.js'

/**
 * FitStream on a Redis Cluster of three masters (redis-server --cluster-enabled, made one cluster by
 * `redis-cli --cluster create`). A deployment first runs on one Redis, is copied to the cluster with
 * `fitstream redis copy-to-cluster` and started there with REDIS_CLUSTER_NODES: its person is still
 * known, the whole pipeline runs, and a buyer gets every record once. A script or transaction whose keys spanned slots would fail here with
 * CROSSSLOT; the keys must also really be spread over the masters, not all behind one hash tag.
 * Needs redis-server and redis-cli on the PATH: skipped without them, except in CI (.ci/run sets
 * FITSTREAM_REQUIRE_CLUSTER=1), where a missing redis-server is a failure.
 */
const run = promisify(execFile)
const bin = fileURLToPath(new URL('../bin/fitstream.mjs', import.meta.url))
const TYPES: DataTypeKey[] = ['steps']

let cluster: LocalRedisCluster | undefined
let check: DeliveryCheck | undefined
let redis: RedisConnection | undefined

async function waitFor(condition: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  for (let waited = 0; waited < timeoutMs; waited += 100) {
    if (await condition()) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`never reached ${what} within ${timeoutMs} ms`)
}

describe.runIf(hasRedisServer() || process.env.FITSTREAM_REQUIRE_CLUSTER === '1')('FitStream on a Redis Cluster', () => {
  let prefix: string
  /** A person of the deployment that ran on one Redis before it moved to the cluster. */
  let moved: RegisteredUser
  let movedBefore: { fetchedUntil: string; recordsReleased: number }
  let copyOutput: string

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start(3)
    const { nodes: clusterNodes, url: clusterUrl } = cluster
    prefix = uniquePrefix('cluster')

    // A deployment on one Redis: a person registers and their day is synced and released.
    const single = await Stack.start({ redisUrl: redisUrl(), prefix, dataTypes: TYPES, backfillDays: 1, cleanRedis: false })
    try {
      moved = await single.registerUser({ seed: 'cluster-moved-user', dataTypes: TYPES })
      await waitFor(async () => (await stateOf(single, moved.userId)).recordsReleased > 0, 'the person’s records released', 60_000)
      movedBefore = await stateOf(single, moved.userId)
      const queues = single.queues()
      await waitFor(
        async () => (await Promise.all(STAGE_NAMES.map((stage) => queues.queue(stage).count()))).every((count) => count === 0),
        'empty queues',
        60_000,
      )
    } finally {
      await single.stop()
    }

    // The move: every key copied to the cluster under its cluster name, then the old keys removed.
    const source = createRedis(redisUrl(), 'producer', 'cluster-test-source')
    try {
      copyOutput = (
        await run(process.execPath, [bin, 'redis', 'copy-to-cluster', '--from', redisUrl()], {
          env: { PATH: process.env.PATH, REDIS_URL: clusterUrl, REDIS_CLUSTER_NODES: clusterNodes.join(','), QUEUE_PREFIX: prefix },
        })
      ).stdout
      await deleteKeysWithPrefix(source, prefix)
    } finally {
      source.disconnect()
    }

    // The same deployment (its keys, the same encryption and pseudonym keys) started on the cluster.
    const s = single.secrets
    const keys = { REFRESH_TOKEN_KEYS: s.REFRESH_TOKEN_KEYS, ACCESS_TOKEN_KEYS: s.ACCESS_TOKEN_KEYS }
    check = await DeliveryCheck.start({
      redisUrl: clusterUrl,
      redisClusterNodes: clusterNodes,
      prefix,
      dataTypes: TYPES,
      backfillDays: 1,
      serviceEnv: { 'token-service': keys, fetcher: keys, anonymizer: { PSEUDONYM_KEY: s.PSEUDONYM_KEY } },
    })
    redis = createRedis({ url: clusterUrl, clusterNodes }, 'producer', 'cluster-test')
  })

  afterAll(async () => {
    redis?.disconnect()
    await check?.stack.stop()
    await cluster?.stop()
  })

  it('finds the people of a deployment copied from one Redis: their sync cursor and privacy ledger', async () => {
    process.stdout.write(`fitstream redis copy-to-cluster: ${copyOutput}`)
    expect(copyOutput).toMatch(/^copied \d+ keys under /)
    expect(await stateOf(check!.stack, moved.userId)).toEqual(movedBefore)
  })

  it('delivers every record exactly once, re-sends nothing of the moved person, with the keys spread over the masters', async () => {
    const stack = check!.stack
    check!.add(await stack.registerUser({ seed: 'cluster-user-1', dataTypes: TYPES }), await stack.registerUser({ seed: 'cluster-user-2', dataTypes: TYPES }))
    // The moved person syncs again: their fetch history came along, so what was released before is not sent again.
    expect((await stack.api('POST', `/users/${moved.userId}/sync`)).status).toBe(202)
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
    const erased = await stack.api('DELETE', `/users/${moved.userId}`)
    expect(erased.status).toBe(200)
    const receipt = erased.body as { byOwner: { owner: string; outcome: string }[] }
    expect(receipt.byOwner.find((o) => o.owner === 'token-service')?.outcome).toBe('deleted')
    await expect.poll(async () => stack.queues().queueNamed('anonymizer-erasure').count(), { timeout: 30_000 }).toBe(0)
    const naming: string[] = []
    for await (const keys of scanKeys(redis!, `${prefix}:*`)) naming.push(...keys.filter((key) => key.includes(moved.userId)))
    expect(naming).toEqual([])
    expect((await stack.api('GET', `/users/${moved.userId}`)).status).toBe(404)
  })
})

/** What a person's state shows that lives in Redis: their sync cursor (user hash) and what was released (privacy ledger). */
async function stateOf(stack: Stack, userId: string): Promise<{ fetchedUntil: string; recordsReleased: number }> {
  const user = (await stack.api('GET', `/users/${userId}`)).body as { fetchedUntil: string | null }
  const privacy = (await stack.api('GET', `/users/${userId}/privacy`)).body as { totals: { recordsReleased: number } }
  return { fetchedUntil: user.fetchedUntil ?? '', recordsReleased: privacy.totals.recordsReleased }
}
