export { startLocalStreamrNetwork, LOCAL_CHAIN_ID, type LocalStreamrNetwork, type StartLocalStreamrNetworkOptions } from './local-network.js'
export type { LocalStreamrClientConfig } from './client-config.js'
export type { EntryPointDescriptor } from './entry-point.js'
export type { DevAccount } from './dev-accounts.js'
export { DEV_MNEMONIC } from './dev-accounts.js'
export { freePort } from './free-port.js'
export { anvilBinaryPath } from './anvil.js'
export { deployHub, buyOnLocalHub, type LocalHub, type DeployHubOptions, type BuyOptions } from './hub.js'
export { loadHubArtifacts, HUB_CONTRACTS_PACKAGE, type ContractArtifact, type HubContractName } from './hub-artifacts.js'
export {
  deployDataUnionContracts,
  loadDataUnionArtifacts,
  type DataUnionContractName,
  type DeployDataUnionOptions,
  type LocalDataUnionContracts,
} from './data-union.js'
