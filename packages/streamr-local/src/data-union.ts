import { createRequire } from 'node:module'
import { Contract, ContractFactory, JsonRpcProvider, NonceManager, Wallet, parseUnits, type BaseContract } from 'ethers'
import type { ContractArtifact } from './hub-artifacts.js'

export type DataUnionContractName = 'DataUnionTemplate' | 'DataUnionFactory' | 'DefaultFeeOracle'

/**
 * ABI and bytecode of the Data Union contracts, as `@dataunions/contracts` ships them (a package
 * with no dependencies of its own, unlike the Hub's).
 */
export function loadDataUnionArtifacts(): Record<DataUnionContractName, ContractArtifact> {
  const require = createRequire(import.meta.url)
  return require('@dataunions/contracts') as Record<DataUnionContractName, ContractArtifact>
}

export interface LocalDataUnionContracts {
  /** What `fitstream du create` deploys through (DATA_UNION_FACTORY_ADDRESS). */
  readonly factoryAddress: string
  readonly templateAddress: string
  readonly feeOracleAddress: string
  /** Where the protocol fee goes: an account of its own, so tests can tell it from the admin's. */
  readonly protocolBeneficiary: string
  /** The protocol fee as a fraction scaled by 1e18, as the oracle answers it (0.01 = 1%). */
  readonly protocolFee: bigint
}

export interface DeployDataUnionOptions {
  rpcUrl: string
  chainId: number
  deployerPrivateKey: string
  /** The token Data Unions are paid in by default (the Hub's test ERC-20). */
  tokenAddress: string
  /** Receives the protocol fee. */
  protocolBeneficiary: string
  /** Protocol fee as a decimal fraction (default "0.01", Streamr's 1%). */
  protocolFee?: string
}

/**
 * Deploys the Data Union framework as it stands on Polygon: the DataUnionTemplate every Data Union
 * is a clone of, a DefaultFeeOracle with the protocol fee, and the DataUnionFactory that clones and
 * initialises the template. The upgradeable contracts are used without a proxy: initialize() plays
 * the constructor, as for the Hub.
 */
export async function deployDataUnionContracts(opts: DeployDataUnionOptions): Promise<LocalDataUnionContracts> {
  const artifacts = loadDataUnionArtifacts()
  const provider = new JsonRpcProvider(opts.rpcUrl, opts.chainId, { staticNetwork: true, pollingInterval: 50 })
  try {
    const signer = new NonceManager(new Wallet(opts.deployerPrivateKey, provider))
    const deploy = async (artifact: ContractArtifact): Promise<BaseContract & Contract> => {
      const contract = await new ContractFactory(artifact.abi as never, artifact.bytecode, signer).deploy()
      await contract.waitForDeployment()
      return contract as BaseContract & Contract
    }
    const send = async (contract: Contract, method: string, ...args: unknown[]): Promise<void> => {
      const tx = (await contract.getFunction(method)(...args)) as { wait(): Promise<unknown> }
      await tx.wait()
    }
    const template = await deploy(artifacts.DataUnionTemplate)
    const feeOracle = await deploy(artifacts.DefaultFeeOracle)
    const factory = await deploy(artifacts.DataUnionFactory)
    const [templateAddress, feeOracleAddress, factoryAddress] = await Promise.all([template.getAddress(), feeOracle.getAddress(), factory.getAddress()])
    const protocolFee = parseUnits(opts.protocolFee ?? '0.01', 18)
    await send(feeOracle, 'initialize', protocolFee, opts.protocolBeneficiary)
    await send(factory, 'initialize', templateAddress, opts.tokenAddress, feeOracleAddress)
    return { factoryAddress, templateAddress, feeOracleAddress, protocolBeneficiary: opts.protocolBeneficiary, protocolFee }
  } finally {
    provider.destroy()
  }
}
