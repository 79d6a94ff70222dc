import { createHash, getHashes } from 'node:crypto'
import { EthereumKeyPairIdentity } from '@streamr/sdk'
import { computeAddress, getBytes } from 'ethers'
import secp256k1 from 'secp256k1'

/** The prefix Ethereum's personal_sign puts before a message, which Streamr's EVM signatures keep. */
const ETHEREUM_MESSAGE_PREFIX = '\x19Ethereum Signed Message:\n'

/** Whether this Node's OpenSSL has Keccak-256 (OpenSSL 3.2 and later; Node 24 has it, Node 20 does not). */
export const NATIVE_KECCAK = getHashes().includes('keccak-256')

/**
 * The SDK's Ethereum key identity, signing with OpenSSL's Keccak-256 instead of the SDK's pure
 * JavaScript one. Every message is hashed whole before it is signed, and the publisher's messages
 * carry hundreds of records each: the JavaScript hash was a fifth of the publisher's CPU. The
 * signature is the same bytes (same hash, same deterministic secp256k1 signing library as the SDK's),
 * so buyers verify it as before.
 */
export class NativeKeccakIdentity extends EthereumKeyPairIdentity {
  override async createMessageSignature(payload: Uint8Array): Promise<Uint8Array> {
    const digest = createHash('keccak-256').update(`${ETHEREUM_MESSAGE_PREFIX}${payload.length}`).update(payload).digest()
    const { signature, recid } = secp256k1.ecdsaSign(digest, this.privateKey)
    const result = new Uint8Array(signature.length + 1)
    result.set(signature)
    result[signature.length] = 27 + recid
    return result
  }
}

/**
 * The identity the publisher signs with: the native-hash one where OpenSSL has Keccak-256, otherwise
 * the SDK's own from the key.
 */
export function publisherIdentity(privateKey: string): EthereumKeyPairIdentity {
  if (!NATIVE_KECCAK) return EthereumKeyPairIdentity.fromPrivateKey(privateKey)
  return new NativeKeccakIdentity(getBytes(computeAddress(privateKey)), getBytes(privateKey))
}
