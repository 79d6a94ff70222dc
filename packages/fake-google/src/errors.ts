/**
 * Google's two error dialects: the Fitness API's JSON error envelope and the OAuth token endpoint's
 * flat `{error, error_description}`. Clients branch on these shapes, so the fake reproduces them.
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
