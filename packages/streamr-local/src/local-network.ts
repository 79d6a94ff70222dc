import { JsonRpcProvider } from 'ethers'
import { startAnvil, type AnvilProcess } from './anvil.js'
import { buildClientConfig, type LocalStreamrClientConfig } from './client-config.js'
import { DEV_MNEMONIC, devAccounts, type DevAccount } from './dev-accounts.js'
import { startEntryPoint, type EntryPoint, type EntryPointDescriptor } from './entry-point.js'
import { freePort } from './free-port.js'
import { deployHub, type LocalHub } from './hub.js'
import { deployStreamRegistry } from './stream-registry.js'

/** anvil's default, and the chain id @streamr/sdk's dev2 environment expects. */
export const LOCAL_CHAIN_ID = 31337
const ACCOUNT_COUNT = 10

export interface LocalStreamrNetwork {
  readonly rpcUrl: string
  readonly chainId: number
  readonly streamRegistryAddress: string
  /** PeerDescriptor-shaped plain object, usable in SDK config as an entry point. */
  readonly entryPoint: EntryPointDescriptor
  /** Funded anvil dev accounts (public test keys); accounts[0] deployed the stream registry. */
  readonly accounts: readonly DevAccount[]
  /** The Hub contracts, when started with `hub: true`. */
  readonly hub: LocalHub | undefined
  /** Plain SDK config for a client on this network; a free websocket port is picked if not given. */
  clientConfig(opts: { privateKey: string; websocketPort?: number; nodeId?: string }): Promise<LocalStreamrClientConfig>
  /** Stops the entry point and anvil, freeing their ports. Safe to call more than once. */
  stop(): Promise<void>
  /** Outages, for fault tests: the entry point stopped, and started again with the same id and port. */
  stopEntryPoint(): Promise<void>
  startEntryPoint(): Promise<void>
  /** The chain frozen (SIGSTOP: its RPC accepts connections and never answers), and thawed with its state. */
  freezeChain(): void
  thawChain(): void
}

export interface StartLocalStreamrNetworkOptions {
  /** Interface everything binds to and advertises; default 127.0.0.1. */
  host?: string
  /** Default: a free port chosen by anvil. */
  chainPort?: number
  /** Default: a free port. */
  entryPointPort?: number
  /** Also deploy the Hub (ProjectRegistryV1, MarketplaceV4, a test ERC-20); default false. */
  hub?: boolean
  /** Progress messages and anvil's own output; nothing is printed without it. */
  log?: (msg: string) => void
}

/**
 * Starts a throwaway Streamr network on this machine: an anvil chain with StreamRegistryV5 and
 * one DHT entry point, no Docker, no internet. Every call gets its own ports, so tests can run
 * several networks side by side.
 */
export async function startLocalStreamrNetwork(opts: StartLocalStreamrNetworkOptions = {}): Promise<LocalStreamrNetwork> {
  const host = opts.host ?? '127.0.0.1'
  const log = opts.log
  const startedAt = performance.now()
  const elapsed = (): string => `${Math.round(performance.now() - startedAt)} ms`

  // The entry point does not need the chain, so it starts while anvil boots and the registry is
  // deployed. If either fails, whatever did start is stopped before the error is passed on.
  const [chainResult, entryPointResult] = await Promise.allSettled([
    startChain(host, opts.chainPort, opts.hub === true, log),
    startEntryPoint({ host, port: opts.entryPointPort, log }),
  ])
  if (chainResult.status === 'rejected' || entryPointResult.status === 'rejected') {
    await Promise.allSettled([
      chainResult.status === 'fulfilled' ? chainResult.value.anvil.stop() : undefined,
      entryPointResult.status === 'fulfilled' ? entryPointResult.value.stop() : undefined,
    ])
    throw chainResult.status === 'rejected' ? chainResult.reason : (entryPointResult as PromiseRejectedResult).reason
  }
  const { anvil, accounts, streamRegistryAddress, hub } = chainResult.value
  let entryPoint: EntryPoint = entryPointResult.value
  const thawChain = (): void => void process.kill(anvil.pid, 'SIGCONT')
  const { nodeId, websocket } = entryPoint.descriptor
  log?.(`entry point ${nodeId} on ws://${websocket.host}:${websocket.port}`)
  log?.(`local Streamr network ready in ${elapsed()}`)

  const endpoints = {
    host,
    rpcUrl: anvil.rpcUrl,
    chainId: LOCAL_CHAIN_ID,
    streamRegistryAddress,
    entryPoint: entryPoint.descriptor,
  }
  let stopping: Promise<void> | undefined
  return Object.freeze({
    rpcUrl: anvil.rpcUrl,
    chainId: LOCAL_CHAIN_ID,
    streamRegistryAddress,
    entryPoint: entryPoint.descriptor,
    accounts,
    hub,
    async clientConfig(clientOpts: Parameters<LocalStreamrNetwork['clientConfig']>[0]) {
      const websocketPort = clientOpts.websocketPort ?? (await freePort(host))
      return buildClientConfig(endpoints, { ...clientOpts, websocketPort })
    },
    async stopEntryPoint() {
      await entryPoint.stop()
    },
    async startEntryPoint() {
      entryPoint = await startEntryPoint({ host, port: websocket.port, nodeId, log })
    },
    freezeChain() {
      process.kill(anvil.pid, 'SIGSTOP')
    },
    thawChain,
    stop() {
      stopping ??= (async () => {
        // Entry point first: clients still connected see it leave while the chain is still up.
        // anvil is stopped even if that fails, so no process outlives the network.
        const errors: unknown[] = []
        await entryPoint.stop().catch((err: unknown) => errors.push(err))
        // A frozen chain would not see the signal to stop (and one already gone needs none).
        try {
          thawChain()
        } catch {
          // already gone
        }
        await anvil.stop().catch((err: unknown) => errors.push(err))
        log?.('local Streamr network stopped')
        if (errors.length > 0) throw errors[0]
      })()
      return stopping
    },
  })
}

interface Chain {
  anvil: AnvilProcess
  accounts: readonly DevAccount[]
  streamRegistryAddress: string
  hub: LocalHub | undefined
}

async function startChain(host: string, port: number | undefined, withHub: boolean, log: ((msg: string) => void) | undefined): Promise<Chain> {
  const anvil = await startAnvil({
    host,
    port: port ?? 0,
    chainId: LOCAL_CHAIN_ID,
    mnemonic: DEV_MNEMONIC,
    accountCount: ACCOUNT_COUNT,
    log,
  })
  try {
    log?.(`anvil (pid ${anvil.pid}) at ${anvil.rpcUrl}`)
    const accounts = devAccounts(ACCOUNT_COUNT)
    await assertAccountsMatch(anvil.rpcUrl, accounts)
    const streamRegistryAddress = await deployStreamRegistry({
      rpcUrl: anvil.rpcUrl,
      chainId: LOCAL_CHAIN_ID,
      deployerPrivateKey: accounts[0]!.privateKey,
    })
    log?.(`StreamRegistryV5 at ${streamRegistryAddress}`)
    const hub = withHub
      ? await deployHub({
          rpcUrl: anvil.rpcUrl,
          chainId: LOCAL_CHAIN_ID,
          deployerPrivateKey: accounts[0]!.privateKey,
          streamRegistryAddress,
          mintTo: accounts.slice(1).map((a) => a.address),
          log,
        })
      : undefined
    if (hub !== undefined) log?.(`ProjectRegistryV1 at ${hub.projectRegistryAddress}, MarketplaceV4 at ${hub.marketplaceAddress}`)
    return { anvil, accounts, streamRegistryAddress, hub }
  } catch (err) {
    await anvil.stop()
    throw err
  }
}

// The keys are derived here rather than parsed from anvil's banner; should a future anvil derive
// differently, fail loudly instead of handing out keys with no funds.
async function assertAccountsMatch(rpcUrl: string, accounts: readonly DevAccount[]): Promise<void> {
  const provider = new JsonRpcProvider(rpcUrl, LOCAL_CHAIN_ID, { staticNetwork: true })
  try {
    const funded = (await provider.send('eth_accounts', [])) as string[]
    const expected = accounts.map((a) => a.address.toLowerCase())
    const actual = funded.map((a) => a.toLowerCase())
    if (expected.some((address, i) => actual[i] !== address)) {
      throw new Error(`anvil's dev accounts (${actual.join(', ')}) differ from the derived ones`)
    }
  } finally {
    provider.destroy()
  }
}
