export {
  startLocalStreamrNetwork,
  LOCAL_CHAIN_ID,
  type LocalStreamrNetwork,
  type StartLocalStreamrNetworkOptions,
} from './local-network.js'
export type { LocalStreamrClientConfig } from './client-config.js'
export type { EntryPointDescriptor } from './entry-point.js'
export type { DevAccount } from './dev-accounts.js'
export { DEV_MNEMONIC } from './dev-accounts.js'
export { freePort } from './free-port.js'
export { anvilBinaryPath } from './anvil.js'
