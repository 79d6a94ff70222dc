import { HDNodeWallet } from 'ethers'

/**
 * anvil's (and hardhat's) default mnemonic. Its keys are public knowledge: fine for a throwaway
 * local chain, never for anything that holds value.
 */
export const DEV_MNEMONIC = 'test test test test test test test test test test test junk'

export interface DevAccount {
  readonly address: string
  readonly privateKey: string
}

let cache: readonly DevAccount[] = []

/** The first `count` accounts anvil funds when started with DEV_MNEMONIC. */
export function devAccounts(count: number): readonly DevAccount[] {
  // Deriving from the mnemonic costs tens of milliseconds, and every network uses the same keys.
  if (cache.length < count) {
    const root = HDNodeWallet.fromPhrase(DEV_MNEMONIC, undefined, "m/44'/60'/0'/0")
    cache = Object.freeze(
      Array.from({ length: count }, (_, i) => {
        const wallet = root.deriveChild(i)
        return Object.freeze({ address: wallet.address, privateKey: wallet.privateKey })
      }),
    )
  }
  return cache.slice(0, count)
}
