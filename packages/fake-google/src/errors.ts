/**
 * Google's three error dialects: the Fitness API's JSON error envelope (with `errors[]`), the
 * Health API's google.rpc.Status (with typed `details[]`), and the OAuth token endpoint's flat
 * `{error, error_description}`. Clients branch on these shapes, so the fake reproduces them.
 */

export interface GoogleErrorItem {
  domain: string
  reason: string
  message: string
  location?: string
  locationType?: string
}

export interface GoogleErrorBody {
  error: {
    code: number
    message: string
    errors: GoogleErrorItem[]
    status: string
  }
}

/** Canonical status and a typical reason for each HTTP code the fake produces. */
const DEFAULTS: Record<number, { status: string; reason: string }> = {
  400: { status: 'INVALID_ARGUMENT', reason: 'invalidArgument' },
  401: { status: 'UNAUTHENTICATED', reason: 'authError' },
  403: { status: 'PERMISSION_DENIED', reason: 'forbidden' },
  404: { status: 'NOT_FOUND', reason: 'notFound' },
  405: { status: 'NOT_FOUND', reason: 'notFound' },
  409: { status: 'ABORTED', reason: 'conflict' },
  413: { status: 'INVALID_ARGUMENT', reason: 'badRequest' },
  429: { status: 'RESOURCE_EXHAUSTED', reason: 'rateLimitExceeded' },
  500: { status: 'INTERNAL', reason: 'backendError' },
  502: { status: 'UNAVAILABLE', reason: 'backendError' },
  503: { status: 'UNAVAILABLE', reason: 'backendError' },
  504: { status: 'DEADLINE_EXCEEDED', reason: 'backendError' },
}

export function defaultStatus(code: number): { status: string; reason: string } {
  return (
    DEFAULTS[code] ?? {
      status: code >= 500 ? 'INTERNAL' : 'FAILED_PRECONDITION',
      reason: code >= 500 ? 'backendError' : 'failedPrecondition',
    }
  )
}

/** An error the Fitness API answers with; thrown by validation and turned into a response. */
export class FitApiError extends Error {
  readonly code: number
  readonly reason: string
  readonly status: string
  readonly headers: Readonly<Record<string, string>>
  readonly item: GoogleErrorItem

  constructor(
    code: number,
    message: string,
    opts: {
      reason?: string
      status?: string
      headers?: Record<string, string>
      itemMessage?: string
      item?: Partial<GoogleErrorItem>
    } = {},
  ) {
    super(message)
    this.name = 'FitApiError'
    const d = defaultStatus(code)
    this.code = code
    this.reason = opts.reason ?? d.reason
    this.status = opts.status ?? d.status
    this.headers = opts.headers ?? {}
    this.item = { domain: 'global', reason: this.reason, message: opts.itemMessage ?? message, ...opts.item }
  }

  toBody(): GoogleErrorBody {
    return { error: { code: this.code, message: this.message, errors: [this.item], status: this.status } }
  }
}

export const badRequest = (message: string, reason = 'invalidArgument'): FitApiError => new FitApiError(400, message, { reason })

export function unauthenticated(): FitApiError {
  return new FitApiError(
    401,
    'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
    {
      itemMessage: 'Invalid Credentials',
      item: { location: 'Authorization', locationType: 'header' },
      headers: { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' },
    },
  )
}

/** The Health API's error body: a google.rpc.Status in an `error` envelope. */
export interface HealthErrorBody {
  error: {
    code: number
    message: string
    status: string
    /** Typed detail messages (`@type` names each one); absent when there are none. */
    details?: Record<string, unknown>[]
  }
}

/** The Health API methods the fake serves, as its RPCs are named in error details. */
export type HealthRpc = 'RollUpDataPoints' | 'DailyRollUpDataPoints' | 'ListDataPoints' | 'ReconcileDataPoints' | 'GetSettings'

const HEALTH_SERVICE = 'health.googleapis.com'

/** An error the Health API answers with; thrown by validation and turned into a response. */
export class HealthApiError extends Error {
  readonly code: number
  readonly status: string
  readonly details: readonly Record<string, unknown>[]
  readonly headers: Readonly<Record<string, string>>

  constructor(code: number, message: string, opts: { status?: string; details?: Record<string, unknown>[]; headers?: Record<string, string> } = {}) {
    super(message)
    this.name = 'HealthApiError'
    this.code = code
    this.status = opts.status ?? defaultStatus(code).status
    this.details = opts.details ?? []
    this.headers = opts.headers ?? {}
  }

  toBody(): HealthErrorBody {
    const details = this.details.length === 0 ? {} : { details: this.details.map((d) => ({ ...d })) }
    return { error: { code: this.code, message: this.message, status: this.status, ...details } }
  }
}

/** A google.rpc.ErrorInfo detail, the machine-readable reason clients are meant to branch on. */
function errorInfo(reason: string, rpc: HealthRpc, metadata: Record<string, string> = {}): Record<string, unknown> {
  return {
    '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
    reason,
    domain: 'googleapis.com',
    metadata: {
      service: HEALTH_SERVICE,
      method: `google.devicesandservices.health.v4.${rpc === 'GetSettings' ? 'HealthProfileService' : 'DataPointsService'}.${rpc}`,
      ...metadata,
    },
  }
}

/** A 400 naming the offending request field in a google.rpc.BadRequest detail, as Google's front end does. */
export function healthBadRequest(message: string, field?: string): HealthApiError {
  const violation = field === undefined ? { description: message } : { field, description: message }
  return new HealthApiError(400, message, { details: [{ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [violation] }] })
}

const CREDENTIAL_HELP =
  'Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.'

/** Why a request has no usable access token. */
export type CredentialProblem = 'missing' | 'invalid' | 'expired'

export function healthUnauthenticated(problem: CredentialProblem, rpc: HealthRpc): HealthApiError {
  const missing = problem === 'missing'
  const reason = missing ? 'CREDENTIALS_MISSING' : problem === 'expired' ? 'ACCESS_TOKEN_EXPIRED' : 'ACCESS_TOKEN_TYPE_UNSUPPORTED'
  const message = missing
    ? `Request is missing required authentication credential. ${CREDENTIAL_HELP}`
    : `Request had invalid authentication credentials. ${CREDENTIAL_HELP}`
  return new HealthApiError(401, message, {
    details: [errorInfo(reason, rpc)],
    headers: {
      'www-authenticate': missing ? 'Bearer realm="https://accounts.google.com/"' : 'Bearer realm="https://accounts.google.com/", error="invalid_token"',
    },
  })
}

export function healthScopeInsufficient(rpc: HealthRpc, requiredScope: string): HealthApiError {
  return new HealthApiError(403, 'Request had insufficient authentication scopes.', {
    details: [errorInfo('ACCESS_TOKEN_SCOPE_INSUFFICIENT', rpc)],
    headers: { 'www-authenticate': `Bearer realm="https://accounts.google.com/", error="insufficient_scope", scope="${requiredScope}"` },
  })
}

/** The error an injected Health fault answers with when no body is configured: Google's usual one for the status. */
export function healthFault(status: number, reason: string | undefined, rpc: HealthRpc): HealthApiError {
  const defaults: Record<number, { message: string; reason?: string; metadata?: Record<string, string> }> = {
    401: { message: `Request had invalid authentication credentials. ${CREDENTIAL_HELP}`, reason: 'ACCESS_TOKEN_EXPIRED' },
    403:
      reason === undefined || reason === 'ACCESS_TOKEN_SCOPE_INSUFFICIENT'
        ? { message: 'Request had insufficient authentication scopes.', reason: 'ACCESS_TOKEN_SCOPE_INSUFFICIENT' }
        : { message: 'The caller does not have permission' },
    429: {
      message: `Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user' of service '${HEALTH_SERVICE}'.`,
      reason: 'RATE_LIMIT_EXCEEDED',
      metadata: { quota_metric: `${HEALTH_SERVICE}/read_requests`, quota_limit: 'ReadRequestsPerMinutePerUser' },
    },
    503: { message: 'The service is currently unavailable.' },
  }
  const d = defaults[status] ?? { message: status >= 500 ? 'Internal error encountered.' : 'Request failed (injected fault).' }
  const why = reason ?? d.reason
  return new HealthApiError(status, d.message, why === undefined ? {} : { details: [errorInfo(why, rpc, reason === undefined ? d.metadata : {})] })
}

/** The token endpoint's error body. */
export interface OAuthErrorBody {
  error: string
  error_description?: string
}

export class OAuthError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly error: string,
    readonly description: string,
  ) {
    super(`${error}: ${description}`)
    this.name = 'OAuthError'
  }

  toBody(): OAuthErrorBody {
    return { error: this.error, error_description: this.description }
  }
}
