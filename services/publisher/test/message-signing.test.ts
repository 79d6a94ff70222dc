import { randomBytes } from 'node:crypto'
import { EthereumKeyPairIdentity } from '@streamr/sdk'
import { EcdsaSecp256k1Evm, hexToBinary } from '@streamr/utils'
import { describe, expect, it } from 'vitest'
import { NATIVE_KECCAK, publisherIdentity } from '../src/message-signing.js'

const KEY = `0x${'4c'.repeat(32)}`

describe("the publisher's message signatures", () => {
  it("uses OpenSSL's Keccak-256 on the Node FitStream ships with", () => {
    // The image and CI run Node 24: a Node without it would silently sign at a fifth of the publisher's CPU.
    expect(NATIVE_KECCAK).toBe(true)
  })

  it('are byte for byte the signatures the SDK makes, so buyers verify them as before', async () => {
    const ours = publisherIdentity(KEY)
    const sdk = EthereumKeyPairIdentity.fromPrivateKey(KEY)
    expect(await ours.getUserId()).toBe(await sdk.getUserId())
    expect(ours.getSignatureType()).toBe(sdk.getSignatureType())
    // Lengths around the hash's 136-byte block and a message as large as the publisher sends.
    for (const size of [0, 1, 135, 136, 137, 1_000, 250_000]) {
      const payload = randomBytes(size)
      expect(Buffer.from(await ours.createMessageSignature(payload)).toString('hex'), `${size} bytes`).toBe(
        Buffer.from(await sdk.createMessageSignature(payload)).toString('hex'),
      )
    }
  })

  it("verify as the buyer's SDK verifies them, and a message altered after signing does not", async () => {
    const ours = publisherIdentity(KEY)
    const signer = hexToBinary(await ours.getUserId())
    const payload = Buffer.from('{"records":[{"type":"steps","values":{"count":120}}]}')
    const signature = await ours.createMessageSignature(payload)
    expect(signature).toHaveLength(65)
    const verifier = new EcdsaSecp256k1Evm()
    expect(await verifier.verifySignature(signer, payload, signature)).toBe(true)
    // A buyer's node checks every message against the stream's publisher: an altered record, or the
    // signature moved onto another message, is refused.
    const altered = Buffer.from(payload.toString().replace('120', '121'))
    expect(await verifier.verifySignature(signer, altered, signature)).toBe(false)
    const other = await ours.createMessageSignature(altered)
    expect(await verifier.verifySignature(signer, payload, other)).toBe(false)
  })
})
