import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'

/**
 * A WebAuthn authenticator in software, built from the spec (W3C WebAuthn Level 3, §6.1 authenticator
 * data, §6.5 attestation objects; RFC 8152 COSE keys; RFC 8949 CBOR), so the tests can attack the
 * server as a real authenticator and browser would, and as a forger would: other origins, other RP
 * IDs, rewound counters, another account's user handle.
 */
export class SoftwareAuthenticator {
  /** The credential id (base64url) once a passkey is made. */
  credentialId = ''
  /** The user handle the server asked the passkey to be made for (base64url). */
  userHandle = ''
  counter = 0
  private privateKey: KeyObject | undefined
  private publicCose: Buffer | undefined

  /** `navigator.credentials.create()` and the browser's `toJSON()`, for options from the server. */
  create(options: { challenge: string; rp: { id?: string }; user: { id: string } }, at: { origin: string; rpId?: string }): RegistrationJson {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const jwk = publicKey.export({ format: 'jwk' })
    this.privateKey = privateKey
    // COSE_Key: kty EC2 (2), alg ES256 (-7), crv P-256 (1), x, y.
    this.publicCose = cbor(
      new Map<number, unknown>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, Buffer.from(jwk.x!, 'base64url')],
        [-3, Buffer.from(jwk.y!, 'base64url')],
      ]),
    )
    const id = randomBytes(16)
    this.credentialId = id.toString('base64url')
    this.userHandle = options.user.id
    this.counter = 0
    const credentialData = Buffer.concat([Buffer.alloc(16), u16(id.length), id, this.publicCose])
    const authData = Buffer.concat([rpIdHash(at.rpId ?? options.rp.id ?? ''), Buffer.from([FLAG_UP | FLAG_UV | FLAG_AT]), u32(this.counter), credentialData])
    const attestationObject = cbor(
      new Map<string, unknown>([
        ['fmt', 'none'],
        ['attStmt', new Map()],
        ['authData', authData],
      ]),
    )
    return this.credential({
      clientDataJSON: clientData('webauthn.create', options.challenge, at.origin),
      attestationObject: attestationObject.toString('base64url'),
      transports: ['internal'],
    })
  }

  /** `navigator.credentials.get()` and `toJSON()`: an assertion over the challenge, the counter one higher. */
  get(options: { challenge: string; rpId?: string }, at: { origin: string; rpId?: string; userHandle?: string; counter?: number }): AuthenticationJson {
    if (this.privateKey === undefined) throw new Error('no passkey made yet')
    this.counter = at.counter ?? this.counter + 1
    const authData = Buffer.concat([rpIdHash(at.rpId ?? options.rpId ?? ''), Buffer.from([FLAG_UP | FLAG_UV]), u32(this.counter)])
    const clientDataJSON = clientData('webauthn.get', options.challenge, at.origin)
    const signed = Buffer.concat([authData, createHash('sha256').update(Buffer.from(clientDataJSON, 'base64url')).digest()])
    return this.credential({
      clientDataJSON,
      authenticatorData: authData.toString('base64url'),
      // ES256 signatures in WebAuthn are DER-encoded, which is what node's sign() gives.
      signature: sign('sha256', signed, this.privateKey).toString('base64url'),
      userHandle: at.userHandle ?? this.userHandle,
    })
  }

  /** The PublicKeyCredential's JSON around either ceremony's response: this passkey's id, no extensions. */
  private credential<R>(response: R): CredentialJson<R> {
    return { id: this.credentialId, rawId: this.credentialId, type: 'public-key', clientExtensionResults: {}, response }
  }
}

export interface CredentialJson<R> {
  id: string
  rawId: string
  type: 'public-key'
  clientExtensionResults: Record<string, never>
  response: R
}

export type RegistrationJson = CredentialJson<{ clientDataJSON: string; attestationObject: string; transports: string[] }>

export type AuthenticationJson = CredentialJson<{ clientDataJSON: string; authenticatorData: string; signature: string; userHandle: string }>

const FLAG_UP = 0x01
const FLAG_UV = 0x04
const FLAG_AT = 0x40

function clientData(type: string, challenge: string, origin: string): string {
  return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false })).toString('base64url')
}

function rpIdHash(rpId: string): Buffer {
  return createHash('sha256').update(rpId).digest()
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(n)
  return b
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

/** Deterministic CBOR for what attestation needs: small integers, byte and text strings, maps. */
function cbor(value: unknown): Buffer {
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value)
  if (Buffer.isBuffer(value)) return Buffer.concat([head(2, value.length), value])
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8')
    return Buffer.concat([head(3, bytes.length), bytes])
  }
  if (value instanceof Map) return Buffer.concat([head(5, value.size), ...[...value].flatMap(([k, v]) => [cbor(k), cbor(v)])])
  throw new Error(`no CBOR for ${typeof value}`)
}

function head(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n])
  if (n < 256) return Buffer.from([(major << 5) | 24, n])
  return Buffer.concat([Buffer.from([(major << 5) | 25]), u16(n)])
}
