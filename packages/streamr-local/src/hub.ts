import { tokenABI, tokenBytecode, streamRegistryABI } from '@streamr/network-contracts'
import { Contract, ContractFactory, JsonRpcProvider, NonceManager, Wallet, parseUnits, type BaseContract } from 'ethers'
import { loadHubArtifacts } from './hub-artifacts.js'

export interface LocalHub {
  readonly projectRegistryAddress: string
  readonly marketplaceAddress: string
  /** A test ERC-20 (18 decimals) to price projects in; `mintTo` accounts hold 1,000,000 each. */
  readonly tokenAddress: string
}

export interface DeployHubOptions {
  rpcUrl: string
  chainId: number
  deployerPrivateKey: string
  streamRegistryAddress: string
  /** Accounts that get test tokens to buy with. */
  mintTo: readonly string[]
  log?: ((msg: string) => void) | undefined
}

/**
 * Deploys the Hub as on Polygon: ProjectRegistryV1 (trusted by the StreamRegistry, so a purchase
 * can grant SUBSCRIBE), MarketplaceV4 (trusted by the registry, so `buy` can grant a subscription)
 * and a test ERC-20 to pay in. Like the StreamRegistry, the upgradeable contracts are used without
 * a proxy: initialize() plays the constructor.
 */
export async function deployHub(opts: DeployHubOptions): Promise<LocalHub> {
  const artifacts = await loadHubArtifacts({ log: opts.log })
  const provider = new JsonRpcProvider(opts.rpcUrl, opts.chainId, { staticNetwork: true, pollingInterval: 50 })
  try {
    const signer = new NonceManager(new Wallet(opts.deployerPrivateKey, provider))
    const deploy = async (abi: readonly unknown[], bytecode: string, ...args: unknown[]): Promise<BaseContract & Contract> => {
      const contract = await new ContractFactory(abi as never, bytecode, signer).deploy(...args)
      await contract.waitForDeployment()
      return contract as BaseContract & Contract
    }
    const send = async (contract: Contract, method: string, ...args: unknown[]): Promise<void> => {
      const tx = (await contract.getFunction(method)(...args)) as { wait(): Promise<unknown> }
      await tx.wait()
    }
    const [projectRegistry, marketplace, token] = await Promise.all([
      deploy(artifacts.ProjectRegistryV1.abi, artifacts.ProjectRegistryV1.bytecode),
      deploy(artifacts.MarketplaceV4.abi, artifacts.MarketplaceV4.bytecode),
      deploy(tokenABI, tokenBytecode, 'Test DATA', 'TDATA'),
    ])
    const [projectRegistryAddress, marketplaceAddress, tokenAddress] = await Promise.all([
      projectRegistry.getAddress(),
      marketplace.getAddress(),
      token.getAddress(),
    ])
    const streamRegistry = new Contract(opts.streamRegistryAddress, streamRegistryABI, signer)
    await send(projectRegistry, 'initialize', opts.streamRegistryAddress)
    await send(streamRegistry, 'grantRole', await streamRegistry.getFunction('TRUSTED_ROLE')(), projectRegistryAddress)
    // The marketplace's domain id is the chain id, as on Polygon (137).
    await send(marketplace, 'initialize', projectRegistryAddress, opts.chainId)
    await send(projectRegistry, 'grantRole', await projectRegistry.getFunction('TRUSTED_ROLE')(), marketplaceAddress)
    for (const account of opts.mintTo) await send(token, 'mint', account, parseUnits('1000000', 18))
    return { projectRegistryAddress, marketplaceAddress, tokenAddress }
  } finally {
    provider.destroy()
  }
}

export interface BuyOptions {
  rpcUrl: string
  chainId: number
  hub: LocalHub
  buyerPrivateKey: string
  /** bytes32 hex */
  projectId: string
  seconds: number
}

/**
 * What a buyer does on the Hub: approve the project's price in the test token, then
 * MarketplaceV4.buy. The project registry then grants SUBSCRIBE on every stream of the project.
 */
export async function buyOnLocalHub(opts: BuyOptions): Promise<void> {
  const { MarketplaceV4 } = await loadHubArtifacts()
  const provider = new JsonRpcProvider(opts.rpcUrl, opts.chainId, { staticNetwork: true, pollingInterval: 50 })
  try {
    const buyer = new NonceManager(new Wallet(opts.buyerPrivateKey, provider))
    const token = new Contract(opts.hub.tokenAddress, tokenABI, buyer)
    const marketplace = new Contract(opts.hub.marketplaceAddress, MarketplaceV4.abi as never, buyer)
    const approve = (await token.getFunction('approve')(opts.hub.marketplaceAddress, parseUnits('1000000', 18))) as { wait(): Promise<unknown> }
    await approve.wait()
    const buy = (await marketplace.getFunction('buy')(opts.projectId, opts.seconds)) as { wait(): Promise<unknown> }
    await buy.wait()
  } finally {
    provider.destroy()
  }
}
