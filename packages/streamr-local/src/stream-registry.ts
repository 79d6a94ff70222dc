import { streamRegistryABI, streamRegistryBytecode } from '@streamr/network-contracts'
import { ContractFactory, JsonRpcProvider, NonceManager, Wallet, ZeroAddress } from 'ethers'

export interface DeployStreamRegistryOptions {
  rpcUrl: string
  chainId: number
  deployerPrivateKey: string
}

/**
 * Deploys StreamRegistryV5 (the contract @streamr/sdk 103 talks to) and initialises it. Only
 * network-contracts 8.x ships the bytecode; 9.x has the ABIs only.
 */
export async function deployStreamRegistry(opts: DeployStreamRegistryOptions): Promise<string> {
  // staticNetwork skips ethers' chain-id probing; the short polling interval matters because
  // anvil mines each transaction at once and ethers would otherwise wait 4 s between polls.
  const provider = new JsonRpcProvider(opts.rpcUrl, opts.chainId, {
    staticNetwork: true,
    pollingInterval: 50,
  })
  try {
    // Two transactions are sent back to back; NonceManager counts nonces locally instead of
    // asking the node, which could still report the pre-deployment nonce.
    const signer = new NonceManager(new Wallet(opts.deployerPrivateKey, provider))
    const factory = new ContractFactory(streamRegistryABI, streamRegistryBytecode, signer)
    const registry = await factory.deploy()
    await registry.waitForDeployment()
    // The upgradeable contract is used without a proxy, so initialize() plays the constructor.
    // The ENS cache is only consulted for ENS-named streams, which local tests do not create;
    // any address does. No trusted forwarder (meta-transactions) is needed.
    const ensCache = await signer.getAddress()
    const tx = await registry.getFunction('initialize')(ensCache, ZeroAddress)
    await tx.wait()
    return await registry.getAddress()
  } finally {
    provider.destroy()
  }
}
