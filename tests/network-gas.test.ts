import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Contract, Interface, JsonRpcProvider, Wallet, formatUnits, parseUnits, type InterfaceAbi } from 'ethers'
import { streamRegistryABI, tokenABI } from '@streamr/network-contracts'
import { buyOnLocalHub, loadHubArtifacts } from '@fitstream/streamr-local'
import { PublisherHarness } from '../services/publisher/test/harness.js'
import { reportFigures } from './helpers.js'

/**
 * What selling costs in gas, from the receipts of the real transactions on the local chain: the
 * seller's `streams provision` (every default data type and its cohort stream), `hub create-project`
 * listing them all, a buyer's purchase (approve + MarketplaceV4.buy) and `hub sync-access` giving
 * that buyer's grants their end on every stream in one setPermissionsMultipleStreams transaction.
 * docs/costs.md is made from the figures this prints.
 */
let harness: PublisherHarness
let chain: JsonRpcProvider
let calls: Interface

interface Spent {
  transactions: number
  gasUsed: bigint
  byFunction: Record<string, { count: number; gasUsed: string }>
}

/** Every transaction mined while `step` ran (the chain is this test's alone), named by the function it called. */
async function measure(step: () => Promise<unknown>): Promise<Spent> {
  // eth_blockNumber itself: the provider's getBlockNumber may answer from a cache.
  const head = async (): Promise<number> => Number(await chain.send('eth_blockNumber', []))
  const from = (await head()) + 1
  await step()
  const to = await head()
  const spent: Spent = { transactions: 0, gasUsed: 0n, byFunction: {} }
  const totals = new Map<string, { count: number; gasUsed: bigint }>()
  for (let n = from; n <= to; n++) {
    const block = await chain.getBlock(n)
    for (const hash of block?.transactions ?? []) {
      const [tx, receipt] = await Promise.all([chain.getTransaction(hash), chain.getTransactionReceipt(hash)])
      const name = calls.parseTransaction({ data: tx!.data })?.name ?? tx!.data.slice(0, 10)
      const total = totals.get(name) ?? { count: 0, gasUsed: 0n }
      totals.set(name, { count: total.count + 1, gasUsed: total.gasUsed + receipt!.gasUsed })
      spent.transactions++
      spent.gasUsed += receipt!.gasUsed
    }
  }
  for (const [name, { count, gasUsed }] of totals) spent.byFunction[name] = { count, gasUsed: gasUsed.toString() }
  return spent
}

/** POL at a gas price in gwei. */
const pol = (gas: bigint, gwei: number): string => formatUnits(gas * parseUnits(String(gwei), 'gwei'), 18)

beforeAll(async () => {
  harness = await PublisherHarness.start({ hub: true })
  chain = new JsonRpcProvider(harness.network.rpcUrl, harness.network.chainId, { staticNetwork: true })
  const { ProjectRegistryV1, MarketplaceV4 } = await loadHubArtifacts()
  const fragments = [...streamRegistryABI, ...ProjectRegistryV1.abi, ...MarketplaceV4.abi, ...tokenABI] as { type?: string; name?: string }[]
  // One interface for all four contracts: functions only, each name once.
  const seen = new Set<string>()
  calls = new Interface(fragments.filter((f) => f.type === 'function' && !seen.has(JSON.stringify(f)) && seen.add(JSON.stringify(f))) as InterfaceAbi)
})

afterAll(async () => {
  chain?.destroy()
  await harness?.stop()
})

describe('what selling costs in gas', () => {
  it('provisions, lists, sells and syncs access, syncing every stream of a buyer in one transaction', async () => {
    const provision = await measure(() => harness.cli(['streams', 'provision']))
    const streams = provision.byFunction.createStream!.count
    expect(streams).toBeGreaterThanOrEqual(2)

    let projectId = ''
    const createProject = await measure(async () => {
      const { stdout } = await harness.cli([
        'hub',
        'create-project',
        '--name',
        'FitStream all types',
        '--price-per-second',
        '0.000001',
        '--token',
        harness.network.hub!.tokenAddress,
        '--json',
      ])
      projectId = (JSON.parse(stdout) as { projectId: string }).projectId
    })
    expect(createProject.byFunction.createProject?.count).toBe(1)

    const purchase = await measure(() =>
      buyOnLocalHub({
        rpcUrl: harness.network.rpcUrl,
        chainId: harness.network.chainId,
        hub: harness.network.hub!,
        buyerPrivateKey: harness.buyer.privateKey,
        projectId,
        seconds: 86_400,
      }),
    )
    expect(Object.keys(purchase.byFunction).sort()).toEqual(['approve', 'buy'])

    // For comparison: the same change on one stream as a transaction of its own (estimated, not sent).
    const registry = new Contract(harness.network.streamRegistryAddress, streamRegistryABI, new Wallet(harness.seller.privateKey, chain))
    const [, end] = (await new Contract(
      harness.network.hub!.projectRegistryAddress,
      (await loadHubArtifacts()).ProjectRegistryV1.abi as InterfaceAbi,
      chain,
    ).getFunction('getSubscription')(projectId, harness.buyer.address)) as [boolean, bigint]
    const oneStream = await registry
      .getFunction('setPermissions')
      .estimateGas(harness.streamId('steps'), [harness.buyer.address], [[false, false, 0n, end, false]])

    let synced: { granted: Record<string, string[]>; transactionHashes: string[] } = { granted: {}, transactionHashes: [] }
    const syncAccess = await measure(async () => {
      synced = JSON.parse((await harness.cli(['hub', 'sync-access', '--project-id', projectId, '--json'])).stdout) as typeof synced
    })
    // The buyer's no-end grant on every stream gets its end, all in one transaction.
    expect(Object.keys(synced.granted)).toHaveLength(streams)
    expect(syncAccess.byFunction).toEqual({ setPermissionsMultipleStreams: { count: 1, gasUsed: syncAccess.gasUsed.toString() } })

    const rows = { provision, createProject, purchase, syncAccess }
    reportFigures(
      'gas',
      Object.fromEntries(
        Object.entries(rows).map(([step, spent]) => [
          step,
          { ...spent, gasUsed: spent.gasUsed.toString(), polAt30Gwei: pol(spent.gasUsed, 30), polAt150Gwei: pol(spent.gasUsed, 150) },
        ]),
      ),
    )
    // Batching saves a transaction's base cost (21,000 gas) and more per stream.
    expect(syncAccess.gasUsed).toBeLessThan(oneStream * BigInt(streams))
    reportFigures('sync-access as one setPermissions per stream (estimated)', {
      perStream: oneStream.toString(),
      total: (oneStream * BigInt(streams)).toString(),
    })
    reportFigures('gas per stream', {
      streams,
      provision: (provision.gasUsed / BigInt(streams)).toString(),
      syncAccess: (syncAccess.gasUsed / BigInt(streams)).toString(),
    })
  }, 300_000)
})
