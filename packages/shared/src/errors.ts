import { ERROR_CATALOGUE } from './error-catalogue.js'

/**
 * FitStream's error classes. Each error carries a stable `code` (what logs, metrics and dead-letter
 * entries group by; every code is listed in error-catalogue.ts) and says whether retrying could
 * ever help (`permanent`).
 */
export class FitStreamError extends Error {
  readonly code: string
  /** True when retrying cannot succeed: the job goes straight to its stage's dead-letter queue. */
  readonly permanent: boolean

  constructor(code: string, message: string, options: { permanent?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.permanent = options.permanent ?? false
  }
}

/** A configuration variable is missing or malformed; the service refuses to start. */
export class ConfigError extends FitStreamError {
  constructor(message: string) {
    super('FST_ERR_CONFIG', message, { permanent: true })
  }
}

/** A job payload does not match its stage's schema. Never retried. */
export class InvalidPayloadError extends FitStreamError {
  constructor(message: string) {
    super('FST_ERR_INVALID_PAYLOAD', message, { permanent: true })
  }
}

/**
 * The job's work must not be done, on purpose: the user was erased, or their syncs are paused until
 * they reconnect. The job completes as discarded (nothing to retry, nothing to dead-letter); a
 * paused user's data is fetched later from their cursor, so nothing is lost.
 */
export class DiscardJobError extends FitStreamError {}

export class UserGoneError extends DiscardJobError {
  constructor(message: string) {
    super('FST_ERR_USER_GONE', message, { permanent: true })
  }
}

export class UserPausedError extends DiscardJobError {
  constructor(message: string) {
    super('FST_ERR_USER_PAUSED', message, { permanent: true })
  }
}

/** Google refused the user's refresh token (revoked or expired): the user must consent again. */
export class ReauthRequiredError extends FitStreamError {
  constructor(message: string) {
    super('FST_ERR_REAUTH_REQUIRED', message, { permanent: true })
  }
}

/** No usable access token is stored for the user (yet). Transient: the token service refreshes it. */
export class AccessTokenUnavailableError extends FitStreamError {
  /** Answered as 503 over HTTP: the caller should try again shortly. */
  readonly statusCode = ERROR_CATALOGUE.FST_ERR_ACCESS_TOKEN_UNAVAILABLE.http[0].status

  constructor(message: string) {
    super('FST_ERR_ACCESS_TOKEN_UNAVAILABLE', message)
  }
}

/** An upstream API (Google, Streamr, the chain) failed; `permanent` follows what the upstream said. */
export class UpstreamError extends FitStreamError {
  readonly status: number | undefined

  constructor(code: string, message: string, options: { permanent?: boolean; status?: number; cause?: unknown } = {}) {
    super(code, message, options)
    this.status = options.status
  }
}

/** Encrypted material could not be decrypted (wrong key, unknown key id, tampering). */
export class DecryptionError extends FitStreamError {
  constructor(message: string) {
    super('FST_ERR_DECRYPT', message, { permanent: true })
  }
}

export function isPermanent(error: unknown): boolean {
  return error instanceof FitStreamError && error.permanent
}

export function errorCode(error: unknown): string {
  if (error instanceof FitStreamError) return error.code
  if (error instanceof Error && error.name === 'UnrecoverableError') return 'FST_ERR_UNRECOVERABLE'
  return 'FST_ERR_UNEXPECTED'
}
