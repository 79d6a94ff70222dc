import { config as streamrConfig } from '@streamr/config'
import { Contract, JsonRpcProvider, NonceManager, Wallet, formatUnits, getAddress, id as keccakText, isHexString, parseUnits, type Log } from 'ethers'
import type { PublisherConfig } from './config.js'

/**
 * The Streamr Hub on chain: a product is a project in ProjectRegistryV1, bought through MarketplaceV4
 * (which grants the buyer a subscription, and through it SUBSCRIBE on every stream of the project).
 * The SDK has no API for these, so FitStream calls the contracts directly. Only the functions used
 * here are declared, in ethers' human-readable form.
 */
const PROJECT_REGISTRY_ABI = [
  'function createProject(bytes32 projectId, uint32[] domainIds, (address beneficiary, address pricingTokenAddress, uint256 pricePerSecond)[] paymentDetailsByChain, string[] streams, uint256 minimumSubscriptionSeconds, bool isPublicPurchable, string metadataJsonString)',
  'function exists(bytes32 projectId) view returns (bool)',
  'function getProject(bytes32 id, uint32[] domainIds) view returns ((address beneficiary, address pricingTokenAddress, uint256 pricePerSecond)[] paymentDetails, uint256 minimumSubscriptionSeconds, string metadata, string[] streams)',
  'function getSubscription(bytes32 projectId, address subscriber) view returns (bool isValid, uint256 endTimestamp)',
  'function grantSubscription(bytes32 projectId, uint256 subscriptionSeconds, address subscriber)',
  'function updateProject(bytes32 projectId, uint32[] domainIds, (address beneficiary, address pricingTokenAddress, uint256 pricePerSecond)[] paymentDetailsByChain, string[] streams, uint256 minimumSubscriptionSeconds, string metadataJsonString)',
  'event Subscribed(bytes32 indexed projectId, address indexed subscriber, uint256 endTimestamp)',
  'event SubscriptionExtended(bytes32 indexed projectId, address indexed subscriber, uint256 endTimestamp)',
]
const ERC20_ABI = ['function decimals() view returns (uint8)', 'function symbol() view returns (string)']
/** The StreamRegistry's batch permission calls, for the streams a project gains after people bought it. */
const STREAM_REGISTRY_ABI = [
  'function exists(string streamId) view returns (bool)',
  'function getDirectPermissionsForUser(string streamId, address user) view returns ((bool canEdit, bool canDelete, uint256 publishExpiration, uint256 subscribeExpiration, bool canGrant) permission)',
  'function setPermissionsMultipleStreams(string[] streamIds, address[][] users, (bool canEdit, bool canDelete, uint256 publishExpiration, uint256 subscribeExpiration, bool canGrant)[][] permissions)',
]

export interface HubEnvironment {
  readonly rpcUrl: string
  readonly chainId: number
  readonly projectRegistryAddress: string
  /** The StreamRegistry the streams are on. */
  readonly streamRegistryAddress: string
  /** Where buyers pay; shown to the seller, not needed to list. */
  readonly marketplaceAddress: string | undefined
  /** The environment's DATA token, the default payment token. */
  readonly dataTokenAddress: string | undefined
}

/** Hub addresses and chain: the variables when set, otherwise the environment's from @streamr/config. */
export function hubEnvironment(config: PublisherConfig): HubEnvironment {
  const chain = streamrConfig[config.STREAMR_ENVIRONMENT]
  const projectRegistryAddress = config.HUB_PROJECT_REGISTRY_ADDRESS ?? chain.contracts.ProjectRegistryV1
  const rpcUrl = config.STREAMR_RPC_URL ?? chain.rpcEndpoints[0]?.url
  const streamRegistryAddress = config.STREAMR_STREAM_REGISTRY_ADDRESS ?? chain.contracts.StreamRegistry
  if (projectRegistryAddress === undefined) throw new Error(`no ProjectRegistryV1 is known for ${config.STREAMR_ENVIRONMENT}: set HUB_PROJECT_REGISTRY_ADDRESS`)
  if (streamRegistryAddress === undefined) throw new Error(`no StreamRegistry is known for ${config.STREAMR_ENVIRONMENT}: set STREAMR_STREAM_REGISTRY_ADDRESS`)
  if (rpcUrl === undefined) throw new Error(`no RPC endpoint is known for ${config.STREAMR_ENVIRONMENT}: set STREAMR_RPC_URL`)
  return {
    rpcUrl,
    chainId: config.STREAMR_CHAIN_ID ?? chain.id,
    projectRegistryAddress,
    streamRegistryAddress,
    marketplaceAddress: config.HUB_MARKETPLACE_ADDRESS ?? chain.contracts.MarketplaceV4,
    dataTokenAddress: chain.contracts.DATA,
  }
}

/**
 * Where buyers find a project in the Hub's web app. The app no longer lists projects (its Projects
 * section has been hidden since July 2026), so this direct address is what a seller hands to buyers.
 * A local network has no Hub app.
 */
export function hubProjectUrl(environment: PublisherConfig['STREAMR_ENVIRONMENT'], projectId: string): string | undefined {
  return environment === 'dev2' ? undefined : `https://streamr.network/hub/projects/${encodeURIComponent(projectId)}`
}

export interface ProjectSpec {
  /** bytes32 hex; derived from the seller and name when omitted, so re-running finds the same project. */
  readonly projectId?: string | undefined
  readonly name: string
  readonly description: string
  readonly streams: readonly string[]
  /** ERC-20 buyers pay in. */
  readonly paymentToken: string
  /** Price per second in whole token units, e.g. "0.0001". */
  readonly pricePerSecond: string
  readonly beneficiary: string
  readonly minimumSubscriptionSeconds: number
  /** Extra metadata (data types, anonymisation summary), merged into the Hub's metadata JSON. */
  readonly metadata: Record<string, unknown>
}

export interface CreateProjectResult {
  readonly projectId: string
  readonly created: boolean
  readonly transactionHash?: string
  /** Block of the creation: `hub status --from-block` starts there. */
  readonly blockNumber?: number
}

export interface AddStreamsResult {
  readonly projectId: string
  /** The streams the project lacked, now listed; empty when it had them all (nothing was sent). */
  readonly added: string[]
  readonly transactionHash?: string
}

export interface ProjectStatus {
  readonly projectId: string
  readonly streams: string[]
  readonly metadata: Record<string, unknown>
  readonly minimumSubscriptionSeconds: number
  readonly payment: { beneficiary: string; token: string; symbol: string; pricePerSecond: string; pricePerDay: string }[]
  readonly subscribers: { address: string; valid: boolean; endsAt: string }[]
}

export interface SubscriptionAlignment {
  /** Per stream, the buyers with a running subscription whose SUBSCRIBE on it now ends with it. */
  readonly granted: Record<string, string[]>
  /** Per stream, the buyers whose subscription is over and whose SUBSCRIBE on it now ended with it. */
  readonly ended: Record<string, string[]>
  /** Listed streams that no longer exist, left alone. */
  readonly missing: string[]
  readonly transactionHashes: string[]
}

interface Subscription {
  readonly address: string
  readonly valid: boolean
  /** When it ends, in seconds (as the registry keeps it). */
  readonly end: bigint
}

/** Permission changes (buyer and stream) per transaction: well inside a Polygon block's gas. */
const PERMISSIONS_BATCH = 200
/** Registry reads under way at once. */
const READS_AT_ONCE = 8

export class Hub {
  private readonly provider: JsonRpcProvider
  private readonly registry: Contract
  private readonly signer: NonceManager

  constructor(
    readonly env: HubEnvironment,
    privateKey: string,
  ) {
    this.provider = new JsonRpcProvider(env.rpcUrl, env.chainId, { staticNetwork: true, pollingInterval: 1_000 })
    // One nonce counter for every contract sent to: transactions sent one after another would
    // otherwise ask for the account's nonce again within the provider's cache time and get the same.
    this.signer = new NonceManager(new Wallet(privateKey.startsWith('0x') ? privateKey : `0x${privateKey}`, this.provider))
    this.registry = new Contract(env.projectRegistryAddress, PROJECT_REGISTRY_ABI, this.signer)
  }

  /** The project id FitStream derives for a seller and a product name. */
  static projectIdFor(seller: string, name: string): string {
    return keccakText(`fitstream:${seller.toLowerCase()}:${name}`)
  }

  async createProject(seller: string, spec: ProjectSpec): Promise<CreateProjectResult> {
    const projectId = spec.projectId ?? Hub.projectIdFor(seller, spec.name)
    if (!isHexString(projectId, 32)) throw new Error('--project-id must be 32 bytes of hex (0x + 64 hex characters)')
    if ((await this.call<boolean>('exists', projectId)) === true) return { projectId, created: false }
    const decimals = await this.tokenDecimals(spec.paymentToken)
    const pricePerSecond = parseUnits(spec.pricePerSecond, decimals)
    if (pricePerSecond <= 0n) throw new Error('the price per second must be more than 0 (a free product would be a public stream, unencrypted)')
    const metadata = JSON.stringify({ name: spec.name, description: spec.description, creator: 'FitStream', isDataUnion: false, ...spec.metadata })
    const tx = (await this.registry.getFunction('createProject')(
      projectId,
      [this.env.chainId],
      [[getAddress(spec.beneficiary), getAddress(spec.paymentToken), pricePerSecond]],
      [...spec.streams],
      spec.minimumSubscriptionSeconds,
      true,
      metadata,
    )) as { hash: string; wait(): Promise<{ blockNumber: number } | null> }
    const receipt = await tx.wait()
    return { projectId, created: true, transactionHash: tx.hash, ...(receipt === null ? {} : { blockNumber: receipt.blockNumber }) }
  }

  /** The project as buyers see it, and its subscribers (from `fromBlock`; on Polygon, the creation block). */
  async status(projectId: string, options: { fromBlock: number; blockRange: number }): Promise<ProjectStatus> {
    const [paymentDetails, minimumSubscriptionSeconds, metadataJson, streams] = await this.project(projectId)
    const payment = await Promise.all(
      paymentDetails.map(async ([beneficiary, token, pricePerSecond]) => {
        const [decimals, symbol] = await Promise.all([this.tokenDecimals(token), this.tokenSymbol(token)])
        return {
          beneficiary,
          token,
          symbol,
          pricePerSecond: formatUnits(pricePerSecond, decimals),
          pricePerDay: formatUnits(pricePerSecond * 86_400n, decimals),
        }
      }),
    )
    const subscribers = await this.subscribers(projectId, options)
    const metadata = parseMetadata(metadataJson)
    return { projectId, streams: [...streams], metadata, minimumSubscriptionSeconds: Number(minimumSubscriptionSeconds), payment, subscribers }
  }

  /**
   * Lists the streams a project lacks, keeping its streams, price, payment and minimum subscription,
   * and sets its metadata to what `metadata` makes of the current one: one updateProject
   * transaction, which reverts unless the sender may edit the project and holds GRANT on every new
   * stream. A project that already lists them all is left alone.
   */
  async addStreams(
    projectId: string,
    streams: readonly string[],
    metadata: (current: Record<string, unknown>) => Record<string, unknown>,
  ): Promise<AddStreamsResult> {
    const [paymentDetails, minimumSubscriptionSeconds, metadataJson, listed] = await this.project(projectId)
    const added = streams.filter((stream) => !listed.includes(stream))
    if (added.length === 0) return { projectId, added }
    const tx = (await this.registry.getFunction('updateProject')(
      projectId,
      [this.env.chainId],
      paymentDetails.map(([beneficiary, token, pricePerSecond]) => [beneficiary, token, pricePerSecond]),
      [...listed, ...added],
      minimumSubscriptionSeconds,
      JSON.stringify(metadata(parseMetadata(metadataJson))),
    )) as { hash: string; wait(): Promise<unknown> }
    await tx.wait()
    return { projectId, added, transactionHash: tx.hash }
  }

  /** The streams a project lists. */
  async listedStreams(projectId: string): Promise<string[]> {
    return [...(await this.project(projectId))[3]]
  }

  /**
   * Makes every buyer's SUBSCRIBE on these streams end when their subscription does: a buyer whose
   * subscription is running holds it until then (so streams added after they bought reach them,
   * and the no-end grant the registry makes at purchase gets the end they paid for), and one whose
   * subscription is over no longer holds it. Everything else a buyer holds on a stream is kept;
   * the sender and anyone who may grant or edit a stream are left alone, as are streams that no
   * longer exist. Each buyer's subscription is read again just before their stream's transaction,
   * so one who buys or extends meanwhile is not cut off. The changes of every stream go together in
   * setPermissionsMultipleStreams transactions of at most 200 (buyer, stream) changes, only where
   * something changes: run again, it sends nothing. The sender needs GRANT on the streams.
   */
  async alignSubscriptions(projectId: string, streams: readonly string[], options: { fromBlock: number; blockRange: number }): Promise<SubscriptionAlignment> {
    const buyers = await this.buyers(projectId, options)
    const sender = getAddress(await this.signer.getAddress())
    const registry = new Contract(this.env.streamRegistryAddress, STREAM_REGISTRY_ABI, this.signer)
    const result: SubscriptionAlignment = { granted: {}, ended: {}, missing: [], transactionHashes: [] }
    type Change = { address: string; valid: boolean; permission: [boolean, boolean, bigint, bigint, boolean] }
    const changeFor = async (streamId: string, { address, valid, end }: Subscription): Promise<Change | undefined> => {
      if (address === sender) return undefined
      const [canEdit, canDelete, publishExpiration, subscribeExpiration, canGrant] = (await registry
        .getFunction('getDirectPermissionsForUser')
        .staticCall(streamId, address)) as [boolean, boolean, bigint, bigint, boolean]
      if (canEdit || canGrant) return undefined
      if (valid ? subscribeExpiration === end : subscribeExpiration <= end) return undefined
      return { address, valid, permission: [canEdit, canDelete, publishExpiration, end, canGrant] }
    }
    const due: { streamId: string; change: Change }[] = []
    for (const streamId of streams) {
      if (!((await registry.getFunction('exists').staticCall(streamId)) as boolean)) {
        result.missing.push(streamId)
        continue
      }
      const changes = await inBatches(buyers, READS_AT_ONCE, (buyer) => changeFor(streamId, buyer))
      for (const change of changes) if (change !== undefined) due.push({ streamId, change })
    }
    for (let i = 0; i < due.length; i += PERMISSIONS_BATCH) {
      // Read again right before sending: a buyer who bought or extended since is given their new end.
      const subscriptions = new Map<string, Promise<Subscription>>()
      const subscriptionOf = (address: string): Promise<Subscription> => {
        let read = subscriptions.get(address)
        if (read === undefined) subscriptions.set(address, (read = this.subscription(projectId, address)))
        return read
      }
      const fresh = await inBatches(due.slice(i, i + PERMISSIONS_BATCH), READS_AT_ONCE, async ({ streamId, change }) => {
        const now = await changeFor(streamId, await subscriptionOf(change.address))
        return now === undefined ? undefined : { streamId, change: now }
      })
      const byStream = new Map<string, Change[]>()
      for (const entry of fresh) if (entry !== undefined) byStream.set(entry.streamId, [...(byStream.get(entry.streamId) ?? []), entry.change])
      if (byStream.size === 0) continue
      const tx = (await registry.getFunction('setPermissionsMultipleStreams')(
        [...byStream.keys()],
        [...byStream.values()].map((changes) => changes.map((c) => c.address)),
        [...byStream.values()].map((changes) => changes.map((c) => c.permission)),
      )) as { hash: string; wait(): Promise<unknown> }
      await tx.wait()
      result.transactionHashes.push(tx.hash)
      for (const [streamId, changes] of byStream) {
        for (const { address, valid } of changes) {
          const into = valid ? result.granted : result.ended
          into[streamId] = [...(into[streamId] ?? []), address]
        }
      }
    }
    return result
  }

  /** Gives `subscriber` access without payment (the project's owner only): for trials and partners. */
  async grantSubscription(projectId: string, seconds: number, subscriber: string): Promise<string> {
    const tx = (await this.registry.getFunction('grantSubscription')(projectId, seconds, getAddress(subscriber))) as { hash: string; wait(): Promise<unknown> }
    await tx.wait()
    return tx.hash
  }

  destroy(): void {
    this.provider.destroy()
  }

  /** A project as the registry keeps it on this chain: payment details, minimum subscription, metadata JSON and streams. */
  private async project(projectId: string): Promise<[[string, string, bigint][], bigint, string, string[]]> {
    if ((await this.call<boolean>('exists', projectId)) !== true) throw new Error(`project ${projectId} does not exist on ${this.env.projectRegistryAddress}`)
    return this.call('getProject', projectId, [this.env.chainId])
  }

  private async subscribers(projectId: string, options: { fromBlock: number; blockRange: number }): Promise<ProjectStatus['subscribers']> {
    return (await this.buyers(projectId, options)).map(({ address, valid, end }) => ({ address, valid, endsAt: isoSeconds(end) }))
  }

  private async subscription(projectId: string, address: string): Promise<Subscription> {
    const [valid, end] = await this.call<[boolean, bigint]>('getSubscription', projectId, address)
    return { address, valid, end }
  }

  /** Everyone who ever bought the project (from the registry's logs), with their subscription as it is now. */
  private async buyers(projectId: string, options: { fromBlock: number; blockRange: number }): Promise<Subscription[]> {
    const latest = await this.provider.getBlockNumber()
    const topics = [[this.registry.interface.getEvent('Subscribed')!.topicHash, this.registry.interface.getEvent('SubscriptionExtended')!.topicHash], projectId]
    const addresses = new Set<string>()
    // Public RPCs cap the block range of one eth_getLogs, so the range is walked in slices.
    for (let from = options.fromBlock; from <= latest; from += options.blockRange) {
      const logs: Log[] = await this.provider.getLogs({
        address: this.env.projectRegistryAddress,
        topics,
        fromBlock: from,
        toBlock: Math.min(latest, from + options.blockRange - 1),
      })
      for (const log of logs) addresses.add(getAddress(`0x${log.topics[2]!.slice(26)}`))
    }
    return inBatches([...addresses], READS_AT_ONCE, (address) => this.subscription(projectId, address))
  }

  private async tokenDecimals(token: string): Promise<number> {
    try {
      return Number(await new Contract(token, ERC20_ABI, this.provider).getFunction('decimals')())
    } catch (error) {
      throw new Error(`${token} does not answer as an ERC-20 token on chain ${this.env.chainId}`, { cause: error })
    }
  }

  private async tokenSymbol(token: string): Promise<string> {
    return String(await new Contract(token, ERC20_ABI, this.provider).getFunction('symbol')())
  }

  private async call<T>(method: string, ...args: unknown[]): Promise<T> {
    return (await this.registry.getFunction(method).staticCall(...args)) as T
  }
}

/** A project's metadata JSON as an object; text that is not a JSON object is kept under `raw`. */
function parseMetadata(json: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(json)
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>
  } catch {
    // kept as text below
  }
  return { raw: json }
}

/** A registry time in seconds as ISO 8601; one past what a Date can hold (a grant with no end) reads as the year 275760's last moment. */
function isoSeconds(seconds: bigint): string {
  const ms = seconds * 1000n
  return new Date(ms > 8_640_000_000_000_000n ? 8_640_000_000_000_000 : Number(ms)).toISOString()
}

/** Maps items in order, at most `atOnce` at a time. */
async function inBatches<T, R>(items: readonly T[], atOnce: number, map: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = []
  for (let i = 0; i < items.length; i += atOnce) out.push(...(await Promise.all(items.slice(i, i + atOnce).map(map))))
  return out
}
