import { formatUnits } from 'ethers'
import { DataUnionChain, parseAddress, parseFeeFraction, type DataUnionStatus } from './data-union.js'
import { dataUnionEnvironment, type DataUnionConfig } from './data-union-config.js'

/** `fitstream du ...` options, as the CLI parsed them. */
export interface DataUnionCommandOptions {
  readonly json?: boolean | undefined
  /** --token: the token the Data Union is paid in (default: the factory's default token). */
  readonly token?: string | undefined
  /** --admin-fee: overrides DATA_UNION_ADMIN_FEE. */
  readonly adminFee?: string | undefined
  /** --name: the product's name, kept in the Data Union's metadata. */
  readonly name?: string | undefined
  /** --data-union: the Data Union to report on (default DATA_UNION_ADDRESS). */
  readonly dataUnion?: string | undefined
}

function chainOf(config: Readonly<DataUnionConfig>): DataUnionChain {
  const env = dataUnionEnvironment(config)
  const key = config.STREAMR_PRIVATE_KEY.startsWith('0x') ? config.STREAMR_PRIVATE_KEY : `0x${config.STREAMR_PRIVATE_KEY}`
  return new DataUnionChain({ rpcUrl: env.rpcUrl, chainId: env.chainId, operatorPrivateKey: key, timeoutMs: config.DATA_UNION_CHAIN_TIMEOUT_MS })
}

/** `fitstream du create`: a new Data Union through the chain's DataUnionFactory, the operator its owner and join-part agent. */
export async function createDataUnionCommand(
  config: Readonly<DataUnionConfig>,
  options: DataUnionCommandOptions,
  print: (line: string) => void,
): Promise<void> {
  const env = dataUnionEnvironment(config)
  if (env.factoryAddress === undefined) throw new Error(`no DataUnionFactory is known for ${config.STREAMR_ENVIRONMENT}: set DATA_UNION_FACTORY_ADDRESS`)
  const adminFeeText = options.adminFee ?? config.DATA_UNION_ADMIN_FEE
  const adminFee = parseFeeFraction(adminFeeText)
  const chain = chainOf(config)
  try {
    const created = await chain.create({
      factory: env.factoryAddress,
      token: options.token === undefined ? undefined : parseAddress('--token', options.token),
      adminFee,
      metadata: { name: options.name ?? 'FitStream', app: 'fitstream' },
    })
    const status = await chain.status(created.address)
    if (options.json === true) print(JSON.stringify({ ...created, adminFee: status.adminFee, protocolFee: status.protocolFee, token: status.token }))
    else {
      print(`Data Union ${created.address} created (transaction ${created.transactionHash})`)
      print(`admin fee ${percent(status.adminFee)}, protocol fee ${percent(status.protocolFee)}, paid in ${status.token.symbol} (${status.token.address})`)
      print(`next: set DATA_UNION_ADDRESS=${created.address}, and list the product with hub create-project --beneficiary ${created.address}`)
    }
  } finally {
    chain.destroy()
  }
}

/** `fitstream du status`: members, revenue, fees, and what is still unpaid. */
export async function dataUnionStatusCommand(
  config: Readonly<DataUnionConfig>,
  options: DataUnionCommandOptions,
  print: (line: string) => void,
): Promise<void> {
  const address = options.dataUnion ?? config.DATA_UNION_ADDRESS
  if (address === undefined) throw new Error('--data-union or DATA_UNION_ADDRESS is required')
  const chain = chainOf(config)
  try {
    const status = await chain.status(address)
    if (options.json === true) print(JSON.stringify(status))
    else for (const line of describeStatus(status)) print(line)
  } finally {
    chain.destroy()
  }
}

function describeStatus(s: DataUnionStatus): string[] {
  const t = s.token.symbol
  return [
    `Data Union ${s.address} (owner ${s.owner})`,
    `members: ${s.activeMembers} active, ${s.inactiveMembers} parted`,
    `revenue: ${s.totalRevenue} ${t}; to members ${s.totalEarnings} ${t}`,
    `fees: admin ${s.totalAdminFees} ${t} (${percent(s.adminFee)}), protocol ${s.totalProtocolFees} ${t} (${percent(s.protocolFee)})`,
    `withdrawn: ${s.totalWithdrawn} ${t}; unpaid (still in the contract): ${s.unpaid} ${t}`,
  ]
}

function percent(fraction: string): string {
  // Fractions have at most 18 decimals; two of them are the percent's integer digits.
  const scaled = BigInt(Math.round(Number(fraction) * 1e6))
  return `${formatUnits(scaled, 4)} %`
}
