import { FitStreamError } from '@fitstream/shared'
import {
  AbiCoder,
  Contract,
  JsonRpcProvider,
  NonceManager,
  Wallet,
  formatUnits,
  getAddress,
  isError,
  parseUnits,
  solidityPacked,
  getBytes,
  type TransactionReceipt,
} from 'ethers'

/**
 * A product's Data Union on chain: the contract a Hub project's revenue is paid to, which splits it
 * among its members (equal shares: every member joins with weight 1) after the operator's admin fee
 * and Streamr's protocol fee. FitStream calls the contracts (DataUnionFactory, DataUnionTemplate,
 * from `@dataunions/contracts`) directly with ethers 6; only the functions used here are declared,
 * and tests/data-union.test.ts checks every one of them against the published ABIs.
 */
export const DATA_UNION_ABI = [
  'function version() pure returns (uint256)',
  'function token() view returns (address)',
  'function owner() view returns (address)',
  'function adminFeeFraction() view returns (uint256)',
  'function protocolFeeOracle() view returns (address)',
  'function getStats() view returns (uint256[9])',
  'function isMember(address member) view returns (bool)',
  'function getEarnings(address member) view returns (uint256)',
  'function getWithdrawn(address member) view returns (uint256)',
  'function getWithdrawableEarnings(address member) view returns (uint256)',
  'function memberData(address) view returns (uint8 status, uint256 earningsBeforeLastJoin, uint256 lmeAtJoin, uint256 withdrawnEarnings)',
  'function addMembers(address[] members)',
  'function partMembers(address[] members)',
  'function withdrawAllToSigned(address fromSigner, address to, bool sendToMainnet, bytes signature) returns (uint256)',
  'event EarningsWithdrawn(address indexed member, uint256 amount)',
] as const
export const DATA_UNION_FACTORY_ABI = [
  'function deployNewDataUnionUsingToken(address token, address owner, address[] agents, uint256 initialAdminFeeFraction, string metadataJsonString) returns (address)',
  'function defaultToken() view returns (address)',
  'event DUCreated(address indexed du, address indexed owner, address template)',
] as const
export const FEE_ORACLE_ABI = ['function protocolFeeFor(address) view returns (uint256)'] as const
const ERC20_ABI = [
  'function decimals() view returns (uint8)',
  'function symbol() view returns (string)',
  'function balanceOf(address) view returns (uint256)',
] as const

/** The address given is not an Ethereum address, or its mixed-case checksum is wrong. */
export class InvalidAddressError extends FitStreamError {
  constructor(what: string, value: string) {
    super('FST_ERR_INVALID_ADDRESS', `${what} "${value}" is not a valid Ethereum address (or its upper/lower case checksum is wrong)`, { permanent: true })
  }
}

/** A withdrawal of nothing: the member has no withdrawable earnings, or zero was asked for. */
export class NothingToWithdrawError extends FitStreamError {
  constructor(message: string) {
    super('FST_ERR_NOTHING_TO_WITHDRAW', message, { permanent: true })
  }
}

/** The address is not a Data Union (no contract, or one that does not answer as a DataUnionTemplate does). */
export class NotADataUnionError extends FitStreamError {
  constructor(address: string) {
    super('FST_ERR_NOT_A_DATA_UNION', `${address} is not a Data Union on this chain`, { permanent: true })
  }
}

/** The chain did not answer in time or refused the connection: worth retrying later. */
export class ChainUnavailableError extends FitStreamError {
  constructor(message: string, cause?: unknown) {
    super('FST_ERR_CHAIN_UNAVAILABLE', message, { cause })
  }
}

/** The chain ran the transaction and reverted it: the contract said no (the reason is in the message). */
export class ChainRevertedError extends FitStreamError {
  constructor(message: string, cause?: unknown) {
    super('FST_ERR_CHAIN_REVERTED', message, { permanent: true, cause })
  }
}

/** A checksummed address, or InvalidAddressError; all-lowercase addresses carry no checksum and are accepted. */
export function parseAddress(what: string, value: string): string {
  const trimmed = value.trim()
  if (!/^0x[0-9a-fA-F]{40}$/.test(trimmed)) throw new InvalidAddressError(what, value)
  try {
    return getAddress(trimmed)
  } catch {
    throw new InvalidAddressError(what, value)
  }
}

/** A decimal fraction such as "0.1" (10 %) as the contracts hold it: scaled by 1e18. */
export function parseFeeFraction(value: string): bigint {
  if (!/^(0(\.\d{1,18})?|1(\.0{1,18})?)$/.test(value.trim())) throw new RangeError(`admin fee "${value}" must be a fraction from 0 to 1, e.g. 0.1 for 10 %`)
  return parseUnits(value.trim(), 18)
}

export interface DataUnionChainOptions {
  readonly rpcUrl: string
  readonly chainId: number
  /** The operator's key: owner and join-part agent of the Data Unions it creates, and payer of signed withdrawals. */
  readonly operatorPrivateKey: string
  /** How long one chain call, or one transaction until mined, may take (default 30 s). */
  readonly timeoutMs?: number
}

export interface DataUnionStatus {
  readonly address: string
  readonly token: { readonly address: string; readonly symbol: string; readonly decimals: number }
  readonly owner: string
  readonly activeMembers: number
  readonly inactiveMembers: number
  /** All amounts in token units (decimal strings). */
  readonly totalRevenue: string
  readonly totalEarnings: string
  readonly totalAdminFees: string
  readonly totalProtocolFees: string
  readonly totalWithdrawn: string
  /** Held by the contract and not yet withdrawn by members, the operator or the protocol. */
  readonly unpaid: string
  /** Fractions, e.g. "0.1". */
  readonly adminFee: string
  readonly protocolFee: string
}

export interface MemberEarnings {
  readonly member: string
  readonly isMember: boolean
  /** In the token's smallest unit. */
  readonly withdrawable: bigint
  readonly total: bigint
  readonly withdrawn: bigint
}

export interface MembershipChange {
  /** Sent in this call's transaction. */
  readonly changed: string[]
  /** Already in the asked state (a retry after a transaction that did go through, or a repeated request). */
  readonly unchanged: string[]
  readonly transactionHash?: string
}

export interface Withdrawal {
  readonly member: string
  readonly to: string
  /** In the token's smallest unit. */
  readonly amount: bigint
  readonly transactionHash: string
}

/**
 * The Data Union calls FitStream makes, with the operator's key. Every call is bounded by a
 * timeout, and errors come out as the catalogue's: a frozen or unreachable chain is
 * ChainUnavailableError (retry), a revert ChainRevertedError (don't).
 */
export class DataUnionChain {
  private readonly provider: JsonRpcProvider
  private readonly operator: NonceManager
  readonly operatorAddress: string
  private readonly timeoutMs: number

  constructor(options: DataUnionChainOptions) {
    this.provider = new JsonRpcProvider(options.rpcUrl, options.chainId, { staticNetwork: true, pollingInterval: 250 })
    const wallet = new Wallet(options.operatorPrivateKey, this.provider)
    this.operatorAddress = wallet.address
    this.operator = new NonceManager(wallet)
    this.timeoutMs = options.timeoutMs ?? 30_000
  }

  destroy(): void {
    this.provider.destroy()
  }

  /** Deploys a Data Union through the factory; the operator is its owner and its join-part agent. */
  async create(opts: {
    factory: string
    token?: string | undefined
    adminFee: bigint
    metadata: Record<string, unknown>
  }): Promise<{ address: string; transactionHash: string }> {
    const factoryAddress = parseAddress('DataUnionFactory', opts.factory)
    const factory = new Contract(factoryAddress, DATA_UNION_FACTORY_ABI, this.operator)
    if ((await this.call(() => this.provider.getCode(factoryAddress))) === '0x')
      throw new ChainRevertedError(`no DataUnionFactory at ${factoryAddress} on this chain`)
    const token = opts.token === undefined ? ((await this.call(() => factory.getFunction('defaultToken')())) as string) : parseAddress('token', opts.token)
    const receipt = await this.transact(() =>
      factory.getFunction('deployNewDataUnionUsingToken')(token, this.operatorAddress, [this.operatorAddress], opts.adminFee, JSON.stringify(opts.metadata)),
    )
    for (const log of receipt.logs) {
      const parsed = factory.interface.parseLog(log)
      if (parsed?.name === 'DUCreated') return { address: getAddress(parsed.args[0] as string), transactionHash: receipt.hash }
    }
    throw new ChainRevertedError(`the factory's transaction ${receipt.hash} created no Data Union`)
  }

  /** Throws NotADataUnionError unless `address` answers as a Data Union does. */
  async assertDataUnion(address: string): Promise<string> {
    const du = parseAddress('Data Union', address)
    if ((await this.call(() => this.provider.getCode(du))) === '0x') throw new NotADataUnionError(du)
    const contract = this.dataUnion(du)
    const answers = await this.call(() =>
      Promise.all([contract.getFunction('version')(), contract.getFunction('token')()]).then(
        (values) => values,
        (error: unknown) => {
          if (isError(error, 'CALL_EXCEPTION') || isError(error, 'BAD_DATA')) return undefined
          throw error
        },
      ),
    )
    if (answers === undefined) throw new NotADataUnionError(du)
    return du
  }

  async status(address: string): Promise<DataUnionStatus> {
    const du = await this.assertDataUnion(address)
    const contract = this.dataUnion(du)
    const [stats, tokenAddress, owner, adminFee, oracleAddress] = (await this.call(() =>
      Promise.all([
        contract.getFunction('getStats')(),
        contract.getFunction('token')(),
        contract.getFunction('owner')(),
        contract.getFunction('adminFeeFraction')(),
        contract.getFunction('protocolFeeOracle')(),
      ]),
    )) as [bigint[], string, string, bigint, string]
    const token = new Contract(tokenAddress, ERC20_ABI, this.provider)
    const oracle = new Contract(oracleAddress, FEE_ORACLE_ABI, this.provider)
    const [decimals, symbol, protocolFee] = (await this.call(() =>
      Promise.all([token.getFunction('decimals')(), token.getFunction('symbol')(), oracle.getFunction('protocolFeeFor')(du)]),
    )) as [bigint, string, bigint]
    const units = (value: bigint | undefined): string => formatUnits(value ?? 0n, Number(decimals))
    const [totalRevenue, totalEarnings, totalAdminFees, totalProtocolFees, totalWithdrawn, active, inactive] = stats
    return {
      address: du,
      token: { address: getAddress(tokenAddress), symbol, decimals: Number(decimals) },
      owner: getAddress(owner),
      activeMembers: Number(active),
      inactiveMembers: Number(inactive),
      totalRevenue: units(totalRevenue),
      totalEarnings: units(totalEarnings),
      totalAdminFees: units(totalAdminFees),
      totalProtocolFees: units(totalProtocolFees),
      totalWithdrawn: units(totalWithdrawn),
      unpaid: units((totalRevenue ?? 0n) - (totalWithdrawn ?? 0n)),
      adminFee: formatUnits(adminFee, 18),
      protocolFee: formatUnits(protocolFee, 18),
    }
  }

  /** A member's earnings; an address that never joined has none (the contract would revert). */
  async earnings(dataUnion: string, member: string): Promise<MemberEarnings> {
    const address = parseAddress('member address', member)
    const contract = this.dataUnion(dataUnion)
    const [status, , , withdrawn] = (await this.call(() => contract.getFunction('memberData')(address))) as [bigint, bigint, bigint, bigint]
    if (status === 0n) return { member: address, isMember: false, withdrawable: 0n, total: 0n, withdrawn: 0n }
    const [total, withdrawable] = (await this.call(() =>
      Promise.all([contract.getFunction('getEarnings')(address), contract.getFunction('getWithdrawableEarnings')(address)]),
    )) as [bigint, bigint]
    return { member: address, isMember: status === 1n, withdrawable, total, withdrawn }
  }

  /**
   * Makes every address a member (`join`) or a former member (`part`), in one transaction for those
   * not already so. Reading the state first is what makes a retry safe: a batch whose transaction
   * went through before a timeout changes nothing the second time (and `addMembers` would revert
   * the whole batch on one member who is already in).
   */
  async applyMembership(dataUnion: string, action: 'join' | 'part', members: readonly string[]): Promise<MembershipChange> {
    const contract = this.dataUnion(dataUnion)
    const addresses = [...new Set(members.map((m) => parseAddress('member address', m)))]
    const states = (await this.call(() => Promise.all(addresses.map((a) => contract.getFunction('isMember')(a))))) as boolean[]
    const wanted = action === 'join'
    const changed = addresses.filter((_, i) => states[i] !== wanted)
    const unchanged = addresses.filter((_, i) => states[i] === wanted)
    if (changed.length === 0) return { changed, unchanged }
    try {
      const receipt = await this.transact(() => contract.getFunction(action === 'join' ? 'addMembers' : 'partMembers')(changed))
      return { changed, unchanged, transactionHash: receipt.hash }
    } catch (error) {
      // An earlier attempt's transaction may have been mined after it timed out, between the read
      // above and this one (the contract then refuses `error_alreadyMember`): if everyone is now as
      // asked, the batch is done.
      if (!(error instanceof ChainRevertedError)) throw error
      const now = (await this.call(() => Promise.all(changed.map((a) => contract.getFunction('isMember')(a))))) as boolean[]
      if (now.every((state) => state === wanted)) return { changed: [], unchanged: addresses }
      throw error
    }
  }

  /**
   * Pays all of a member's withdrawable earnings to `to`, the operator paying the gas: the member's
   * key signs the Data Union's withdrawal message (recipient, amount 0 = all, the contract, what the
   * member has withdrawn so far; so a signature works once and on this contract only), and the
   * operator submits it.
   */
  async withdrawAllSigned(dataUnion: string, memberKey: string, to: string): Promise<Withdrawal> {
    const recipient = parseAddress('withdrawal address', to)
    const du = parseAddress('Data Union', dataUnion)
    const member = new Wallet(memberKey)
    const before = await this.earnings(du, member.address)
    if (before.withdrawable === 0n) throw new NothingToWithdrawError(`${member.address} has no withdrawable earnings in ${du}`)
    const message = getBytes(solidityPacked(['address', 'uint256', 'address', 'uint256'], [recipient, 0n, du, before.withdrawn]))
    const signature = await member.signMessage(message)
    const contract = this.dataUnion(du)
    const receipt = await this.transact(() => contract.getFunction('withdrawAllToSigned')(member.address, recipient, false, signature))
    let amount = 0n
    for (const log of receipt.logs) {
      const parsed = log.address.toLowerCase() === du.toLowerCase() ? contract.interface.parseLog(log) : null
      if (parsed?.name === 'EarningsWithdrawn') amount += parsed.args[1] as bigint
    }
    return { member: member.address, to: recipient, amount, transactionHash: receipt.hash }
  }

  private dataUnion(address: string): Contract {
    return new Contract(address, DATA_UNION_ABI, this.operator)
  }

  private async call<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await withTimeout(read(), this.timeoutMs)
    } catch (error) {
      throw chainError(error)
    }
  }

  private async transact(send: () => Promise<unknown>): Promise<TransactionReceipt> {
    for (let attempt = 1; ; attempt++) {
      try {
        const tx = (await withTimeout(send(), this.timeoutMs)) as { wait(confirms?: number, timeout?: number): Promise<TransactionReceipt | null> }
        const receipt = await withTimeout(tx.wait(1, this.timeoutMs), this.timeoutMs)
        if (receipt === null) throw new ChainUnavailableError('the transaction was not mined in time')
        return receipt
      } catch (error) {
        // A nonce handed out for a transaction that never reached the chain must be asked again.
        this.operator.reset()
        // Another process sent with the operator's key meanwhile (the CLI, a second replica): the
        // chain refused this transaction outright, so sending it again with a fresh nonce is safe.
        if (attempt < 3 && (isError(error, 'NONCE_EXPIRED') || isError(error, 'REPLACEMENT_UNDERPRICED'))) continue
        throw chainError(error)
      }
    }
  }
}

const abi = AbiCoder.defaultAbiCoder()

/** The revert reason a Data Union gives (`error_alreadyMember`, ...), when the error carries one. */
function revertReason(error: unknown): string | undefined {
  if (isError(error, 'CALL_EXCEPTION')) {
    if (error.reason !== null && error.reason !== undefined) return error.reason
    const data = error.data
    if (typeof data === 'string' && data.startsWith('0x08c379a0')) return abi.decode(['string'], `0x${data.slice(10)}`)[0] as string
  }
  return undefined
}

function chainError(error: unknown): FitStreamError {
  if (error instanceof FitStreamError) return error
  if (isError(error, 'CALL_EXCEPTION')) return new ChainRevertedError(`the chain refused: ${revertReason(error) ?? error.shortMessage}`, error)
  const message = error instanceof Error ? ((error as { shortMessage?: string }).shortMessage ?? error.message) : String(error)
  return new ChainUnavailableError(`the chain did not answer: ${message}`, error)
}

class TimeoutError extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
