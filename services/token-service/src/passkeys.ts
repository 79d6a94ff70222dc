import { randomBytes } from 'node:crypto'
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server'
import type { DataTypeKey } from '@fitstream/shared'
import type { PasskeyStore } from './passkey-store.js'
import type { UserRepository } from './users.js'

export interface PasskeyConfig {
  /** The relying party ID (PASSKEY_RP_ID): the domain passkeys are bound to. */
  readonly rpId: string
  /** What authenticators call the service next to a passkey. */
  readonly rpName: string
  /** The one origin pages are served from (PUBLIC_URL's): responses made on any other are refused. */
  readonly origin: string
}

/** Why a passkey response was refused, by catalogue code. */
export type PasskeyRefusal =
  | 'FST_ERR_PASSKEY_CHALLENGE'
  | 'FST_ERR_PASSKEY_ORIGIN'
  | 'FST_ERR_PASSKEY_INVALID'
  | 'FST_ERR_PASSKEY_REPLAY'
  | 'FST_ERR_PASSKEY_UNKNOWN'
  | 'FST_ERR_PASSKEY_WRONG_ACCOUNT'

export type PasskeyOutcome =
  { readonly kind: 'signed_in'; readonly userId: string } | { readonly kind: 'refused'; readonly code: PasskeyRefusal; readonly reason: string }

/** What a person chose when making an account with a passkey. */
export interface PasskeyChoice {
  readonly dataTypes: readonly DataTypeKey[]
  readonly individualTypes: readonly DataTypeKey[]
  readonly timeZone?: string
}

/** ES256 and RS256: every platform authenticator offers one of them. */
const ALGORITHMS = [-7, -257]
const TIMEOUT_MS = 120_000

/**
 * Accounts with no Google link: made with a passkey (WebAuthn registration) and signed in to with
 * it. Each challenge is bound to the browser session it was handed to and taken once; the response's
 * origin, RP ID, signature and counter are checked by @simplewebauthn/server against the stored key.
 */
export class Passkeys {
  private readonly now: () => number

  constructor(
    private readonly deps: { readonly store: PasskeyStore; readonly users: UserRepository; readonly config: PasskeyConfig; readonly now?: () => number },
  ) {
    this.now = deps.now ?? Date.now
  }

  /** Options for making a new account's passkey; the choice is kept with the challenge until the passkey comes back. */
  async registrationOptions(sessionId: string, choice: PasskeyChoice): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const handle = randomBytes(32)
    const options = await generateRegistrationOptions({
      rpName: this.deps.config.rpName,
      rpID: this.deps.config.rpId,
      // Authenticators show this next to the passkey; it names no person.
      userName: `FitStream account ${handle.subarray(0, 4).toString('hex')}`,
      userID: new Uint8Array(handle),
      attestationType: 'none',
      // A discoverable passkey, so signing in needs no user name.
      authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
      supportedAlgorithmIDs: ALGORITHMS,
      timeout: TIMEOUT_MS,
    })
    await this.deps.store.saveChallenge(options.challenge, {
      purpose: 'register',
      sessionId,
      handle: handle.toString('base64url'),
      dataTypes: choice.dataTypes,
      individualTypes: choice.individualTypes,
      ...(choice.timeZone === undefined ? {} : { timeZone: choice.timeZone }),
    })
    return options
  }

  /** Verifies a new passkey and makes its account (no Google link), signed in on success. */
  async register(sessionId: string | undefined, response: RegistrationResponseJSON): Promise<PasskeyOutcome> {
    const taken = await this.takeChallenge(sessionId, response.response.clientDataJSON, 'webauthn.create')
    if (taken.kind === 'refused') return taken
    const challenge = taken.challenge
    if (challenge.purpose !== 'register') return refused('FST_ERR_PASSKEY_CHALLENGE', 'the challenge was not handed out for making a passkey')
    let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>
    try {
      verified = await verifyRegistrationResponse({ response, ...this.expected(taken.value), supportedAlgorithmIDs: ALGORITHMS })
    } catch (error) {
      return refusedVerification(error)
    }
    if (!verified.verified) return refused('FST_ERR_PASSKEY_INVALID', 'the passkey could not be verified')
    const { credential } = verified.registrationInfo
    if ((await this.deps.store.get(credential.id)) !== undefined) return refused('FST_ERR_PASSKEY_WRONG_ACCOUNT', 'this passkey is already registered')
    const now = this.now()
    const user = await this.deps.users.create({
      dataTypes: challenge.dataTypes,
      individualTypes: challenge.individualTypes,
      now,
      ...(challenge.timeZone === undefined ? {} : { timeZone: challenge.timeZone }),
    })
    const added = await this.deps.store.add({
      id: credential.id,
      userId: user.id,
      handle: challenge.handle,
      publicKey: credential.publicKey,
      counter: credential.counter,
      transports: credential.transports ?? [],
      createdAt: now,
    })
    if (!added) {
      // The same credential registered at the same moment by another request: that one keeps it.
      await this.deps.users.delete(user.id)
      return refused('FST_ERR_PASSKEY_WRONG_ACCOUNT', 'this passkey is already registered')
    }
    return { kind: 'signed_in', userId: user.id }
  }

  /** Options for signing in with any passkey of this service (discoverable: no user name asked). */
  async signInOptions(sessionId: string): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const options = await generateAuthenticationOptions({ rpID: this.deps.config.rpId, userVerification: 'preferred', timeout: TIMEOUT_MS })
    await this.deps.store.saveChallenge(options.challenge, { purpose: 'sign-in', sessionId })
    return options
  }

  /** Verifies a sign-in with a passkey against its stored public key and counter. */
  async signIn(sessionId: string | undefined, response: AuthenticationResponseJSON): Promise<PasskeyOutcome> {
    const taken = await this.takeChallenge(sessionId, response.response.clientDataJSON, 'webauthn.get')
    if (taken.kind === 'refused') return taken
    if (taken.challenge.purpose !== 'sign-in') return refused('FST_ERR_PASSKEY_CHALLENGE', 'the challenge was not handed out for signing in')
    const stored = await this.deps.store.get(response.id)
    if (stored === undefined || (await this.deps.users.get(stored.userId)) === undefined) {
      return refused('FST_ERR_PASSKEY_UNKNOWN', 'this passkey is not registered here')
    }
    // The authenticator returns the handle the passkey was made for: another one is another account's.
    if (response.response.userHandle !== undefined && response.response.userHandle !== stored.handle) {
      return refused('FST_ERR_PASSKEY_WRONG_ACCOUNT', 'the passkey names another account')
    }
    let verified: Awaited<ReturnType<typeof verifyAuthenticationResponse>>
    try {
      verified = await verifyAuthenticationResponse({
        response,
        ...this.expected(taken.value),
        credential: { id: stored.id, publicKey: new Uint8Array(stored.publicKey), counter: stored.counter, transports: [...stored.transports] },
      })
    } catch (error) {
      return refusedVerification(error)
    }
    if (!verified.verified) return refused('FST_ERR_PASSKEY_INVALID', 'the signature does not verify')
    if (!(await this.deps.store.advanceCounter(stored.id, stored.counter, verified.authenticationInfo.newCounter))) {
      return refused('FST_ERR_PASSKEY_REPLAY', 'the passkey was used meanwhile with the same counter')
    }
    return { kind: 'signed_in', userId: stored.userId }
  }

  /**
   * The challenge a response answers, taken so it can't be answered again: refused unless it was handed
   * to this session, and unless the response was made on our origin (checked here as well as by the
   * library, so that case gets its own code).
   */
  private async takeChallenge(
    sessionId: string | undefined,
    clientDataJSON: string,
    type: string,
  ): Promise<
    { kind: 'taken'; value: string; challenge: NonNullable<Awaited<ReturnType<PasskeyStore['takeChallenge']>>> } | Extract<PasskeyOutcome, { kind: 'refused' }>
  > {
    const clientData = parseClientData(clientDataJSON)
    if (clientData === undefined || clientData.type !== type) return refused('FST_ERR_PASSKEY_INVALID', 'the response carries no readable client data')
    if (clientData.origin !== this.deps.config.origin) return refused('FST_ERR_PASSKEY_ORIGIN', 'the passkey response was made on another site')
    const challenge = await this.deps.store.takeChallenge(clientData.challenge)
    if (challenge === undefined || sessionId === undefined || challenge.sessionId !== sessionId) {
      return refused('FST_ERR_PASSKEY_CHALLENGE', 'the challenge was already used, has expired, or was not handed to this browser')
    }
    return { kind: 'taken', value: clientData.challenge, challenge }
  }

  /**
   * What both ceremonies check a response against: the challenge taken for it, this service's origin
   * and RP ID. User verification is only preferred when asking, so it is not required here either.
   */
  private expected(challenge: string) {
    return { expectedChallenge: challenge, expectedOrigin: this.deps.config.origin, expectedRPID: this.deps.config.rpId, requireUserVerification: false }
  }
}

function refused(code: PasskeyRefusal, reason: string): Extract<PasskeyOutcome, { kind: 'refused' }> {
  return { kind: 'refused', code, reason }
}

/** The library's errors by what they mean for the person: another site, a counter that did not go up, or a bad response. */
function refusedVerification(error: unknown): Extract<PasskeyOutcome, { kind: 'refused' }> {
  const message = error instanceof Error ? error.message : String(error)
  if (/RP ID|origin/i.test(message)) return refused('FST_ERR_PASSKEY_ORIGIN', 'the passkey response was made for another site')
  if (/counter/i.test(message)) return refused('FST_ERR_PASSKEY_REPLAY', 'the passkey counter did not go up')
  return refused('FST_ERR_PASSKEY_INVALID', 'the passkey response could not be verified')
}

function parseClientData(base64url: string): { type: string; challenge: string; origin: string } | undefined {
  if (typeof base64url !== 'string' || base64url.length > 8192) return undefined
  try {
    const data = JSON.parse(Buffer.from(base64url, 'base64url').toString('utf8')) as Record<string, unknown>
    const { type, challenge, origin } = data
    return typeof type === 'string' && typeof challenge === 'string' && typeof origin === 'string' ? { type, challenge, origin } : undefined
  } catch {
    return undefined
  }
}
