import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Contract, JsonRpcProvider } from 'ethers'
import type { ServiceProcess } from '@fitstream/devstack'
import { cohorts, deliveries, keysOf, records, waitUntilPublished } from '../services/publisher/test/harness.js'
import { usePublisherHarness } from './system.js'

const HAS_PERMISSION = 'function hasPermission(string streamId, address user, uint8 permissionType) view returns (bool)'
/** The StreamRegistry's PermissionType: Edit, Delete, Publish, Subscribe, Grant. */
const SUBSCRIBE = 3
const PERMISSIONS_OF =
  'function getDirectPermissionsForUser(string streamId, address user) view returns ((bool canEdit, bool canDelete, uint256 publishExpiration, uint256 subscribeExpiration, bool canGrant))'

/**
 * Selling on the Hub, on a local chain with the Hub contracts deployed: the seller provisions and
 * lists with the `fitstream` CLI, a buyer pays through MarketplaceV4 in a test ERC-20, and only then
 * receives and decrypts the live data.
 */
const system = usePublisherHarness('hub', { hub: true })
const { prefix, redis, queues } = system
let publisher: ServiceProcess
let projectId: string
/** The local chain, read directly: what the StreamRegistry holds, and its clock. */
let chain: JsonRpcProvider
let streamRegistry: Contract

beforeAll(async () => {
  publisher = await system.harness.startPublisher(system.publisherEnv({ XDG_DATA_HOME: system.harness.dataDir() }))
  chain = new JsonRpcProvider(system.harness.network.rpcUrl, system.harness.network.chainId, { staticNetwork: true })
  streamRegistry = new Contract(system.harness.network.streamRegistryAddress, [PERMISSIONS_OF, HAS_PERMISSION], chain)
})

afterAll(() => {
  chain?.destroy()
})

/** When `user`'s own SUBSCRIBE on the stream ends, in seconds (0 when they hold none). */
const subscribeUntil = async (streamId: string, user: string): Promise<bigint> =>
  ((await streamRegistry.getFunction('getDirectPermissionsForUser')(streamId, user)) as bigint[])[3]!
const canSubscribe = (streamId: string, user: string): Promise<boolean> =>
  streamRegistry.getFunction('hasPermission')(streamId, user, SUBSCRIBE) as Promise<boolean>
/** Moves the chain's clock on, as time passing would. */
async function passTime(seconds: number): Promise<void> {
  await chain.send('evm_increaseTime', [seconds])
  await chain.send('evm_mine', [])
}

describe('the Hub', () => {
  it('provisions idempotently and keeps SUBSCRIBE non-public', async () => {
    const first = await system.harness.cli(['streams', 'provision', '--types', 'steps'])
    expect(JSON.parse(first.stdout.trim().split('\n').pop()!)).toMatchObject({ unchanged: false, streams: [{ created: true }, { created: true }] })
    const second = await system.harness.cli(['streams', 'provision', '--types', 'steps'])
    expect(JSON.parse(second.stdout.trim().split('\n').pop()!)).toMatchObject({ unchanged: true })
    expect(second.stderr).toContain('nothing changed')
  }, 120_000)

  it('lists the streams as a project with price, token, beneficiary and metadata', async () => {
    const args = ['hub', 'create-project', '--types', 'steps', '--name', 'FitStream steps', '--price-per-second', '0.001']
    const { stdout } = await system.harness.cli([...args, '--token', system.harness.network.hub!.tokenAddress, '--min-subscription', '60', '--json'])
    const created = JSON.parse(stdout) as { projectId: string; created: boolean; streams: string[] }
    expect(created).toMatchObject({ created: true, streams: [system.harness.streamId('steps'), system.harness.streamId('steps', true)] })
    projectId = created.projectId
    const again = await system.harness.cli([...args, '--token', system.harness.network.hub!.tokenAddress])
    expect(again.stdout).toContain('already exists')

    const status = JSON.parse((await system.harness.cli(['hub', 'status', '--project-id', projectId, '--json'])).stdout) as {
      streams: string[]
      minimumSubscriptionSeconds: number
      payment: { beneficiary: string; symbol: string; pricePerSecond: string }[]
      metadata: { name: string; fitstream: { dataTypes: { key: string }[]; anonymisation: Record<string, string> } }
      subscribers: unknown[]
    }
    expect(status).toMatchObject({
      streams: created.streams,
      minimumSubscriptionSeconds: 60,
      payment: [{ beneficiary: system.harness.seller.address, symbol: 'TDATA', pricePerSecond: '0.001' }],
      metadata: { name: 'FitStream steps', fitstream: { dataTypes: [{ key: 'steps' }] } },
      subscribers: [],
    })
    expect(status.metadata.fitstream.anonymisation.pseudonyms).toMatch(/change every epoch/)
  }, 120_000)

  it('a buyer receives nothing before buying, and decrypts live data after buying through MarketplaceV4', async () => {
    const streams = [system.harness.streamId('steps')]
    const early = await system.harness.startSubscriber(system.harness.buyer.privateKey, streams)
    const before = { syncId: 'before', records: records('steps', 5), cohorts: [] }
    await queues.add('publish', before, { jobId: 'before' })
    await waitUntilPublished(redis, prefix, 'before', 30_000)
    // Key exchange would have had several seconds to succeed; without SUBSCRIBE it must not.
    await new Promise((resolve) => setTimeout(resolve, 6_000))
    expect(early.messages).toEqual([])

    await system.harness.buyOnHub(system.harness.buyer.privateKey, projectId, 3_600)
    const status = JSON.parse((await system.harness.cli(['hub', 'status', '--project-id', projectId, '--json'])).stdout) as {
      subscribers: { address: string; valid: boolean }[]
    }
    expect(status.subscribers).toEqual([expect.objectContaining({ address: system.harness.buyer.address, valid: true })])

    const buyer = await system.harness.startSubscriber(system.harness.buyer.privateKey, streams)
    const after = { syncId: 'after', records: records('steps', 5), cohorts: [] }
    await queues.add('publish', after, { jobId: 'after' })
    await buyer.waitFor(() => keysOf(after).every((key) => deliveries(buyer).has(key)), 60_000)
    const message = buyer.messages.find((m) => (m.content as { records: { id: string }[] }).records[0]?.id === after.records[0]!.id)
    expect(message?.content).toMatchObject({ schema: 'fitstream.records/1', type: 'steps', pseudonym: after.records[0]!.pseudonym })
    expect(message?.publisherId.toLowerCase()).toBe(system.harness.seller.address.toLowerCase())
    expect(publisher.lines.join('\n')).not.toContain(system.harness.seller.privateKey.slice(2))
  }, 150_000)

  it('adds a data type to the running project, keeping its price, and a buyer already subscribed receives it', async () => {
    await system.harness.cli(['streams', 'provision', '--types', 'workouts'])
    const added = JSON.parse((await system.harness.cli(['hub', 'add-streams', '--types', 'workouts', '--project-id', projectId, '--json'])).stdout) as {
      added: string[]
      access: { granted: Record<string, string[]>; ended: Record<string, string[]> }
    }
    const workoutStreams = [system.harness.streamId('workouts'), system.harness.streamId('workouts', true)]
    expect(added).toMatchObject({
      added: workoutStreams,
      access: { granted: Object.fromEntries(workoutStreams.map((s) => [s, [system.harness.buyer.address]])), ended: {} },
    })
    expect((await system.harness.cli(['hub', 'add-streams', '--types', 'workouts', '--project-id', projectId])).stdout).toContain('nothing changed')
    const status = JSON.parse((await system.harness.cli(['hub', 'status', '--project-id', projectId, '--json'])).stdout) as {
      streams: string[]
      minimumSubscriptionSeconds: number
      payment: { pricePerSecond: string }[]
      metadata: { name: string; fitstream: { dataTypes: { key: string; values: string[] }[] } }
      subscribers: { address: string; endsAt: string }[]
    }
    // The buyer holds the new streams until their subscription ends, not for ever.
    const endsAt = Date.parse(status.subscribers.find((s) => s.address === system.harness.buyer.address)!.endsAt) / 1000
    expect(endsAt).toBeGreaterThan(Date.now() / 1000)
    for (const streamId of workoutStreams) expect(await subscribeUntil(streamId, system.harness.buyer.address)).toBe(BigInt(endsAt))
    expect(status).toMatchObject({
      streams: [system.harness.streamId('steps'), system.harness.streamId('steps', true), ...added.added],
      minimumSubscriptionSeconds: 60,
      payment: [{ pricePerSecond: '0.001' }],
      metadata: { name: 'FitStream steps' },
    })
    expect(status.metadata.fitstream.dataTypes.map((t) => t.key)).toEqual(['steps', 'workouts'])
    expect(status.metadata.fitstream.dataTypes[1]!.values).toContain('running_min')

    // The buyer paid before workouts were listed, and reads their cohorts now.
    const buyer = await system.harness.startSubscriber(system.harness.buyer.privateKey, [system.harness.streamId('workouts', true)])
    const job = { syncId: 'workouts', records: [], cohorts: cohorts('workouts', 3) }
    await queues.add('publish', job, { jobId: 'workouts' })
    await buyer.waitFor(() => keysOf(job).every((key) => deliveries(buyer).has(key)), 60_000)
    expect(buyer.messages[0]?.content).toMatchObject({ schema: expect.stringMatching(/^fitstream\.cohorts/), type: 'workouts' })
  }, 180_000)

  it('makes every buyer’s SUBSCRIBE end with their subscription, where the registry gave it with no end', async () => {
    // A second buyer takes the shortest subscription (a minute) and lets it lapse.
    const lapsed = system.harness.network.accounts[3]!
    await system.harness.buyOnHub(lapsed.privateKey, projectId, 60)
    const bought = [system.harness.streamId('steps'), system.harness.streamId('steps', true)]
    const workouts = [system.harness.streamId('workouts'), system.harness.streamId('workouts', true)]
    // Bought through the Hub: SUBSCRIBE with no end on the streams listed at purchase.
    for (const streamId of [...bought, ...workouts]) expect(await subscribeUntil(streamId, lapsed.address)).toBe(2n ** 256n - 1n)

    await passTime(120)
    // The lapsed buyer's subscription is over, but not their permission.
    expect(await canSubscribe(system.harness.streamId('steps'), lapsed.address)).toBe(true)
    const status = JSON.parse((await system.harness.cli(['hub', 'status', '--project-id', projectId, '--json'])).stdout) as {
      subscribers: { address: string; valid: boolean; endsAt: string }[]
    }
    const endOf = (address: string) => BigInt(Date.parse(status.subscribers.find((s) => s.address === address)!.endsAt) / 1000)
    expect(status.subscribers.map((s) => [s.address, s.valid])).toEqual(
      expect.arrayContaining([
        [system.harness.buyer.address, true],
        [lapsed.address, false],
      ]),
    )

    const synced = JSON.parse((await system.harness.cli(['hub', 'sync-access', '--project-id', projectId, '--json'])).stdout) as {
      granted: Record<string, string[]>
      ended: Record<string, string[]>
    }
    // The running buyer's no-end grant gets their end (the workouts streams had it already); the lapsed one is cut off.
    expect(synced.granted).toEqual(Object.fromEntries(bought.map((streamId) => [streamId, [system.harness.buyer.address]])))
    // They bought after workouts were listed, so held those with no end too.
    expect(synced.ended).toEqual(Object.fromEntries([...bought, ...workouts].map((streamId) => [streamId, [lapsed.address]])))
    for (const streamId of [...bought, ...workouts]) {
      expect(await subscribeUntil(streamId, system.harness.buyer.address)).toBe(endOf(system.harness.buyer.address))
      expect(await canSubscribe(streamId, system.harness.buyer.address)).toBe(true)
      // The registry drops a permission that has run out altogether: its end then reads 0.
      expect(await subscribeUntil(streamId, lapsed.address)).toBeLessThanOrEqual(endOf(lapsed.address))
      expect(await canSubscribe(streamId, lapsed.address)).toBe(false)
    }
    expect((await system.harness.cli(['hub', 'sync-access', '--project-id', projectId])).stdout).toContain('nothing changed')

    // Once the running subscription ends too, the network itself refuses the buyer, with no run needed.
    await passTime(3_600)
    for (const streamId of [...bought, ...workouts]) expect(await canSubscribe(streamId, system.harness.buyer.address)).toBe(false)
    expect((await system.harness.cli(['hub', 'sync-access', '--project-id', projectId])).stdout).toContain('nothing changed')
  }, 150_000)
})
