import { google } from 'googleapis'
import { ReauthRequiredError, UpstreamError } from '@fitstream/shared'

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
  const client = new google.auth.OAuth2({
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
