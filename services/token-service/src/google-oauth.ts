import { createHash, randomBytes } from 'node:crypto'
// The auth library googleapis itself uses (same pinned version), without loading every Google API.
import { OAuth2Client } from 'google-auth-library'
import { FitStreamError, ReauthRequiredError, UpstreamError } from '@fitstream/shared'

export interface OAuthClientConfig {
  readonly clientId: string
  readonly clientSecret: string
  /** Google's token endpoint (configurable so a local stand-in can take its place). */
  readonly tokenUrl: string
}

export interface FreshAccessToken {
  readonly accessToken: string
  readonly expiresAt: number
  readonly scopes: readonly string[]
}

/**
 * Exchanges a refresh token for a new access token at Google's token endpoint.
 * Errors never carry the request (it holds the refresh token and client secret): a revoked or
 * expired grant is a ReauthRequiredError, anything else an UpstreamError with Google's own words.
 */
export async function refreshAccessToken(config: OAuthClientConfig, refreshToken: string, now: () => number = Date.now): Promise<FreshAccessToken> {
  const client = new OAuth2Client({
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    endpoints: { oauth2TokenUrl: config.tokenUrl },
  })
  client.setCredentials({ refresh_token: refreshToken })
  try {
    const { credentials } = await client.refreshAccessToken()
    if (typeof credentials.access_token !== 'string' || credentials.access_token === '') {
      throw new UpstreamError('FST_ERR_GOOGLE_TOKEN', 'Google token endpoint answered without an access token')
    }
    return {
      accessToken: credentials.access_token,
      expiresAt: typeof credentials.expiry_date === 'number' ? credentials.expiry_date : now() + 3_600_000,
      scopes: (credentials.scope ?? '').split(' ').filter((s) => s !== ''),
    }
  } catch (error) {
    throw toTokenError(error)
  }
}

interface GaxiosLikeError {
  readonly status?: number
  readonly code?: string | number
  readonly response?: { readonly status?: number; readonly data?: unknown }
}

function toTokenError(error: unknown): Error {
  if (error instanceof UpstreamError) return error
  const e = (error ?? {}) as GaxiosLikeError
  const status = e.response?.status ?? e.status
  const data = (e.response?.data ?? {}) as { error?: unknown; error_description?: unknown }
  const oauthError = typeof data.error === 'string' ? data.error : undefined
  const description = typeof data.error_description === 'string' ? data.error_description : undefined
  if (oauthError === 'invalid_grant') {
    return new ReauthRequiredError(`Google refused the refresh token (invalid_grant: ${description ?? 'expired or revoked'})`)
  }
  if (status === undefined) {
    const code = typeof e.code === 'string' ? e.code : 'network error'
    return new UpstreamError('FST_ERR_GOOGLE_UNREACHABLE', `Google token endpoint unreachable (${code})`)
  }
  const detail = oauthError === undefined ? `HTTP ${status}` : `${oauthError}${description === undefined ? '' : `: ${description}`}`
  // invalid_client and other 4xx are configuration problems retrying cannot fix; 429 and 5xx can pass.
  const permanent = status >= 400 && status < 500 && status !== 408 && status !== 429
  return new UpstreamError('FST_ERR_GOOGLE_TOKEN', `Google token endpoint refused the refresh (${detail})`, { permanent, status })
}

export interface OAuthFlowConfig extends OAuthClientConfig {
  /** Google's consent screen. */
  readonly authUrl: string
  readonly revokeUrl: string
  /** PUBLIC_URL/oauth/callback; must be registered with the OAuth client. */
  readonly redirectUri: string
}

export interface AuthorizationRequest {
  readonly scopes: readonly string[]
  readonly state: string
  readonly codeChallenge: string
}

export interface Grant {
  readonly refreshToken: string
  readonly accessToken: FreshAccessToken
  /** The Google account's stable OpenID subject (`sub` of the id_token); never stored or logged raw. */
  readonly subject: string
}

/** Issuers Google's id_tokens carry (https://accounts.google.com/.well-known/openid-configuration). */
const GOOGLE_ISSUERS = new Set(['https://accounts.google.com', 'accounts.google.com'])

/**
 * The account an id_token names. The token comes straight from Google's token endpoint over TLS, in
 * the answer to our own authenticated code exchange, so (as Google's OpenID Connect guide allows)
 * its signature is not checked; its issuer, audience (our client) and expiry are.
 */
export function idTokenSubject(idToken: unknown, clientId: string, now: number): string {
  if (typeof idToken !== 'string' || idToken === '') throw new IdTokenError('Google answered without an id_token (is the openid scope asked for?)')
  const [, payload] = idToken.split('.')
  let claims: { iss?: unknown; aud?: unknown; exp?: unknown; sub?: unknown }
  try {
    claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as typeof claims
  } catch {
    throw new IdTokenError('the id_token is not a JWT')
  }
  if (typeof claims.iss !== 'string' || !GOOGLE_ISSUERS.has(claims.iss)) throw new IdTokenError('the id_token was not issued by Google')
  const audience = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
  if (!audience.includes(clientId)) throw new IdTokenError('the id_token is for another OAuth client')
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= now) throw new IdTokenError('the id_token has expired')
  if (typeof claims.sub !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(claims.sub)) throw new IdTokenError('the id_token names no account')
  return claims.sub
}

type AuthUrlOptions = NonNullable<Parameters<OAuth2Client['generateAuthUrl']>[0]>

function flowClient(config: OAuthFlowConfig) {
  return new OAuth2Client({
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    redirectUri: config.redirectUri,
    endpoints: { oauth2TokenUrl: config.tokenUrl, oauth2AuthBaseUrl: config.authUrl, oauth2RevokeUrl: config.revokeUrl },
  })
}

/**
 * Where to send the person: Google's consent screen for exactly these scopes, offline access (a
 * refresh token), and `prompt=consent` so a returning person gets a new refresh token too.
 */
export function authorizationUrl(config: OAuthFlowConfig, request: AuthorizationRequest): string {
  return flowClient(config).generateAuthUrl({
    access_type: 'offline',
    prompt: 'consent',
    include_granted_scopes: true,
    // openid: the token endpoint then says which Google account consented (the id_token's sub).
    scope: ['openid', ...request.scopes.filter((scope) => scope !== 'openid')],
    state: request.state,
    code_challenge: request.codeChallenge,
    code_challenge_method: 'S256' as AuthUrlOptions['code_challenge_method'],
  })
}

/** Exchanges an authorization code (with its PKCE verifier) for the person's tokens. */
export async function exchangeAuthorizationCode(config: OAuthFlowConfig, code: string, codeVerifier: string, now: () => number = Date.now): Promise<Grant> {
  let credentials
  try {
    credentials = (await flowClient(config).getToken({ code, codeVerifier, redirect_uri: config.redirectUri })).tokens
  } catch (error) {
    const e = (error ?? {}) as GaxiosLikeError
    const data = (e.response?.data ?? {}) as { error?: unknown; error_description?: unknown }
    const status = e.response?.status ?? e.status
    const detail =
      typeof data.error === 'string'
        ? `${data.error}${typeof data.error_description === 'string' ? `: ${data.error_description}` : ''}`
        : `HTTP ${status ?? 'unreachable'}`
    const permanent = status !== undefined && status >= 400 && status < 500 && status !== 429
    throw new UpstreamError('FST_ERR_GOOGLE_CODE', `Google did not accept the authorization code (${detail})`, {
      permanent,
      ...(status === undefined ? {} : { status }),
    })
  }
  if (typeof credentials.refresh_token !== 'string' || credentials.refresh_token === '' || typeof credentials.access_token !== 'string') {
    throw new UpstreamError('FST_ERR_GOOGLE_CODE', 'Google granted no offline access (no refresh token was issued)', { permanent: true })
  }
  const refreshToken = credentials.refresh_token
  let subject: string
  try {
    subject = idTokenSubject(credentials.id_token, config.clientId, now())
  } catch (error) {
    // A grant whose account we cannot tell is handed back, not kept.
    await revokeGrant(config, refreshToken).catch(() => undefined)
    throw error
  }
  return {
    subject,
    refreshToken,
    accessToken: {
      accessToken: credentials.access_token,
      expiresAt: typeof credentials.expiry_date === 'number' ? credentials.expiry_date : now() + 3_600_000,
      scopes: (credentials.scope ?? '').split(' ').filter((s) => s !== ''),
    },
  }
}

export type RevocationOutcome = 'revoked' | 'already_invalid'

/** Ends the person's grant at Google (revoking a refresh token ends its access tokens too). */
export async function revokeGrant(config: OAuthFlowConfig, token: string): Promise<RevocationOutcome> {
  try {
    await flowClient(config).revokeToken(token)
    return 'revoked'
  } catch (error) {
    const e = (error ?? {}) as GaxiosLikeError
    const status = e.response?.status ?? e.status
    const data = (e.response?.data ?? {}) as { error?: unknown }
    if (status === 400 && (data.error === 'invalid_token' || data.error === 'invalid_grant')) return 'already_invalid'
    throw new UpstreamError('FST_ERR_GOOGLE_REVOKE', `Google's revocation endpoint failed (${status === undefined ? 'unreachable' : `HTTP ${status}`})`, {
      ...(status === undefined ? {} : { status }),
    })
  }
}

/** A PKCE verifier and its S256 challenge. */
export function createPkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(48).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

/** Google's id_token is missing or does not name an account of ours to trust. */
export class IdTokenError extends FitStreamError {
  constructor(message: string) {
    super('FST_ERR_GOOGLE_ID_TOKEN', message, { permanent: true })
  }
}
