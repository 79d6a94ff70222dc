/** The part of the secp256k1 package (the native library the Streamr SDK signs with) the publisher uses. */
declare module 'secp256k1' {
  /** RFC 6979 deterministic, low-s signature of a 32-byte digest: 64 bytes and the recovery id. */
  export function ecdsaSign(digest: Uint8Array, privateKey: Uint8Array): { signature: Uint8Array; recid: number }
  const secp256k1: { ecdsaSign: typeof ecdsaSign }
  export default secp256k1
}
