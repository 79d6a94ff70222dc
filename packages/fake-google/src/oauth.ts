/**
 * Google's user-facing half of OAuth 2.0: the authorize page (account, granular consent, Allow or
 * Deny) and the authorization-code grant at the token endpoint, with PKCE. Modelled on what
 * accounts.google.com and oauth2.googleapis.com do, so a client that works here works there:
 * codes are single-use and short-lived, bound to the client, the redirect URI and the PKCE
 * challenge; a refresh token comes only with `access_type=offline`, and only on the first consent
 * or when `prompt=consent` asks for it again. When `openid` is asked for, the token endpoint's answer
 * carries an `id_token` (an RS256 JWT naming the account by `sub`, for this client, from Google's
 * issuer), signed with a key the fake publishes at /oauth2/v3/certs as Google does.
 */

import { createHash, createSign, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { FITNESS_SCOPE_PREFIX } from './catalogue.js'
import { OAuthError } from './errors.js'
import { HEALTH_SCOPE_PREFIX } from './health-catalogue.js'
import { BodyTooLargeError, readBody, type Reply } from './http.js'

/** What the consent screen needs from the fake's account store. */
export interface ConsentHost {
  readonly clientId: string
  now(): number
  /** Whether an account with this seed has consented to this client before. */
  hasAccount(seed: string): boolean
  /** Records the grant (creating the account if new) and mints a refresh token for it. */
  grant(seed: string, scopes: readonly string[], mergeWithEarlier: boolean): { googleId: string; refreshToken: string }
  /** An access token for the grant, in the token endpoint's answer shape. */
  issueAccessToken(googleId: string, refreshToken: string): Record<string, unknown>
}

interface AuthorizationRequest {
  readonly clientId: string
  readonly redirectUri: string
  readonly scopes: readonly string[]
  readonly state: string | undefined
  readonly codeChallenge: string | undefined
  readonly codeChallengeMethod: 'S256' | 'plain'
  readonly offline: boolean
  readonly forceConsent: boolean
  readonly includeGrantedScopes: boolean
  readonly expiresAtMs: number
}

interface IssuedCode {
  readonly request: AuthorizationRequest
  readonly googleId: string
  readonly refreshToken: string
  readonly returnRefreshToken: boolean
  readonly scopes: readonly string[]
  readonly expiresAtMs: number
  used: boolean
}

const CODE_TTL_MS = 10 * 60_000
const REQUEST_TTL_MS = 30 * 60_000
const ACCOUNT_COOKIE = 'fake_google_account'
const OTHER_SCOPES = new Set([
  'openid',
  'email',
  'profile',
  'https://www.googleapis.com/auth/userinfo.email',
  'https://www.googleapis.com/auth/userinfo.profile',
])
const PKCE_VALUE = /^[A-Za-z0-9._~-]{43,128}$/
/** Sign-in scopes: Google's consent screen shows them as what signing in means, never as a box to untick. */
const IDENTITY_SCOPES = new Set(['openid', 'email', 'profile'])
const ID_TOKEN_ISSUER = 'https://accounts.google.com'
const ID_TOKEN_TTL_S = 3600

export class ConsentScreen {
  private readonly requests = new Map<string, AuthorizationRequest>()
  private readonly codes = new Map<string, IssuedCode>()
  private nextAccount = 1
  private signingKey: { readonly kid: string; readonly privateKey: KeyObject; readonly publicKey: KeyObject } | undefined

  constructor(private readonly host: ConsentHost) {}

  /** Google's JWKS document (https://www.googleapis.com/oauth2/v3/certs): the keys id_tokens are signed with. */
  certs(): Reply {
    const { kid, publicKey } = this.key()
    return { status: 200, body: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }] } }
  }

  /** GET shows the consent screen for a valid request; POST carries the person's decision. */
  async authorize(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    this.sweep()
    if (req.method === 'GET') return this.showConsent(req, res, url)
    if (req.method === 'POST') return this.decide(req, res)
    writeHtml(res, 405, errorPage('invalid_request', 'Invalid request method.'), { allow: 'GET, POST' })
  }

  /** The token endpoint's `grant_type=authorization_code`; the client is already authenticated. */
  exchange(form: ReadonlyMap<string, string>, clientId: string): Reply {
    const code = form.get('code')
    if (code === undefined || code === '') throw new OAuthError(400, 'invalid_request', 'Missing required parameter: code')
    const issued = this.codes.get(code)
    if (issued === undefined || issued.expiresAtMs <= this.host.now()) throw new OAuthError(400, 'invalid_grant', 'Malformed auth code.')
    // A code is spent by its first exchange attempt, right or wrong, so a verifier can't be guessed at.
    if (issued.used) throw new OAuthError(400, 'invalid_grant', 'Bad Request')
    issued.used = true
    if (issued.request.clientId !== clientId) throw new OAuthError(400, 'invalid_grant', 'Unauthorized')
    if (form.get('redirect_uri') !== issued.request.redirectUri) throw new OAuthError(400, 'redirect_uri_mismatch', 'Bad Request')
    const challenge = issued.request.codeChallenge
    if (challenge !== undefined) {
      const verifier = form.get('code_verifier')
      if (verifier === undefined || verifier === '') throw new OAuthError(400, 'invalid_grant', 'Missing code verifier.')
      const derived = issued.request.codeChallengeMethod === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : verifier
      if (!PKCE_VALUE.test(verifier) || derived !== challenge) throw new OAuthError(400, 'invalid_grant', 'Invalid code verifier.')
    }
    const body = this.host.issueAccessToken(issued.googleId, issued.refreshToken)
    return {
      status: 200,
      body: {
        ...body,
        scope: issued.scopes.join(' '),
        ...(issued.returnRefreshToken ? { refresh_token: issued.refreshToken } : {}),
        ...(issued.scopes.includes('openid') ? { id_token: this.idToken(issued.googleId, clientId) } : {}),
      },
    }
  }

  /** An id_token as Google's token endpoint returns it for the `openid` scope. */
  private idToken(googleId: string, clientId: string): string {
    const { kid, privateKey } = this.key()
    const iat = Math.floor(this.host.now() / 1000)
    const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
    const signed = `${part({ alg: 'RS256', kid, typ: 'JWT' })}.${part({ iss: ID_TOKEN_ISSUER, azp: clientId, aud: clientId, sub: googleId, iat, exp: iat + ID_TOKEN_TTL_S })}`
    return `${signed}.${createSign('RSA-SHA256').update(signed).sign(privateKey, 'base64url')}`
  }

  // Made on first use: most fakes never sign anything, and an RSA key takes a moment to make.
  private key(): { readonly kid: string; readonly privateKey: KeyObject; readonly publicKey: KeyObject } {
    if (this.signingKey === undefined) {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
      this.signingKey = { kid: randomBytes(20).toString('hex'), privateKey, publicKey }
    }
    return this.signingKey
  }

  private showConsent(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const params = url.searchParams
    const problem = this.validate(params)
    if (problem !== undefined) return writeHtml(res, 400, errorPage(problem[0], problem[1]))
    const challenge = params.get('code_challenge') ?? undefined
    const request: AuthorizationRequest = {
      clientId: params.get('client_id')!,
      redirectUri: params.get('redirect_uri')!,
      scopes: [
        ...new Set(
          params
            .get('scope')!
            .split(/[ +]/)
            .filter((s) => s !== ''),
        ),
      ],
      state: params.get('state') ?? undefined,
      codeChallenge: challenge,
      codeChallengeMethod: params.get('code_challenge_method') === 'S256' ? 'S256' : 'plain',
      offline: params.get('access_type') === 'offline',
      forceConsent: (params.get('prompt') ?? '').split(' ').includes('consent'),
      includeGrantedScopes: params.get('include_granted_scopes') === 'true',
      expiresAtMs: this.host.now() + REQUEST_TTL_MS,
    }
    const requestId = randomBytes(16).toString('base64url')
    this.requests.set(requestId, request)
    const account = cookie(req, ACCOUNT_COOKIE) ?? params.get('login_hint') ?? this.suggestAccount()
    writeHtml(res, 200, consentPage(requestId, request, account))
  }

  private validate(params: URLSearchParams): [string, string] | undefined {
    if (params.get('client_id') !== this.host.clientId) return ['invalid_client', 'The OAuth client was not found.']
    const redirectUri = params.get('redirect_uri')
    if (redirectUri === null) return ['invalid_request', 'Missing required parameter: redirect_uri']
    let parsed: URL
    try {
      parsed = new URL(redirectUri)
    } catch {
      return ['redirect_uri_mismatch', 'The redirect URI in the request is not a valid URL.']
    }
    if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.hash !== '') {
      return ['redirect_uri_mismatch', 'The redirect URI must be an http or https URL without a fragment.']
    }
    if (params.get('response_type') !== 'code') return ['unsupported_response_type', 'Only response_type=code is supported.']
    const scopes = (params.get('scope') ?? '').split(/[ +]/).filter((s) => s !== '')
    if (scopes.length === 0) return ['invalid_request', 'Missing required parameter: scope']
    const unknown = scopes.find((s) => !s.startsWith(FITNESS_SCOPE_PREFIX) && !s.startsWith(HEALTH_SCOPE_PREFIX) && !OTHER_SCOPES.has(s))
    if (unknown !== undefined) return ['invalid_scope', `Some requested scopes were invalid: ${unknown}`]
    const challenge = params.get('code_challenge')
    const method = params.get('code_challenge_method')
    if (method !== null && method !== 'S256' && method !== 'plain') return ['invalid_request', 'Invalid code_challenge_method.']
    if (challenge === null && method !== null) return ['invalid_request', 'Missing code_challenge.']
    if (challenge !== null && !PKCE_VALUE.test(challenge)) return ['invalid_request', 'Invalid code_challenge.']
    return undefined
  }

  private async decide(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let form: URLSearchParams
    try {
      form = new URLSearchParams((await readBody(req, 64 * 1024)).toString('utf8'))
    } catch (err) {
      if (err instanceof BodyTooLargeError) return writeHtml(res, 413, errorPage('invalid_request', err.message), { connection: 'close' })
      throw err
    }
    const requestId = form.get('request_id') ?? ''
    const request = this.requests.get(requestId)
    if (request === undefined || request.expiresAtMs <= this.host.now()) {
      return writeHtml(res, 400, errorPage('invalid_request', 'This consent screen has expired. Go back to the app and start again.'))
    }
    this.requests.delete(requestId)
    const target = new URL(request.redirectUri)
    if (request.state !== undefined) target.searchParams.set('state', request.state)
    const checked = new Set(form.getAll('scope'))
    const granted = request.scopes.filter((s) => checked.has(s) || IDENTITY_SCOPES.has(s))
    if (form.get('decision') !== 'allow' || granted.length === 0) {
      target.searchParams.set('error', 'access_denied')
      return redirect(res, target)
    }
    const account = (form.get('account') ?? '').trim()
    if (!/^[A-Za-z0-9._@-]{1,64}$/.test(account)) {
      return writeHtml(res, 400, errorPage('invalid_request', 'Choose an account name of 1-64 letters, digits, ., _, @ or -.'))
    }
    const firstConsent = !this.host.hasAccount(account)
    const { googleId, refreshToken } = this.host.grant(account, granted, request.includeGrantedScopes)
    const code = `4/0A${randomBytes(48).toString('base64url')}`
    this.codes.set(code, {
      request,
      googleId,
      refreshToken,
      returnRefreshToken: request.offline && (firstConsent || request.forceConsent),
      scopes: granted,
      expiresAtMs: this.host.now() + CODE_TTL_MS,
      used: false,
    })
    target.searchParams.set('code', code)
    target.searchParams.set('scope', granted.join(' '))
    // Google remembers who is signed in; the next consent screen offers the same account.
    res.setHeader('set-cookie', `${ACCOUNT_COOKIE}=${encodeURIComponent(account)}; Path=/; HttpOnly; SameSite=Lax`)
    redirect(res, target)
  }

  private suggestAccount(): string {
    let seed: string
    do seed = `person-${this.nextAccount++}`
    while (this.host.hasAccount(seed))
    return seed
  }

  private sweep(): void {
    const now = this.host.now()
    for (const [id, r] of this.requests) if (r.expiresAtMs <= now) this.requests.delete(id)
    for (const [code, c] of this.codes) if (c.expiresAtMs <= now) this.codes.delete(code)
  }
}

const SCOPE_LABELS: Readonly<Record<string, string>> = {
  activity: 'See your physical activity data (steps, calories, move minutes, heart points, activities)',
  heart_rate: 'See your heart rate data',
  body: 'See info about your body measurements (weight, height, body fat)',
  sleep: 'See your sleep data',
  location: 'See your location data (distance, speed, places)',
  blood_pressure: 'See info about your blood pressure',
  oxygen_saturation: 'See info about your oxygen saturation',
}

// Health API scopes by group; read-only and full-access scopes of a group read the same data.
const HEALTH_SCOPE_LABELS: Readonly<Record<string, string>> = {
  activity_and_fitness: 'See your activity and fitness data (steps, calories, distance, active minutes, active zone minutes)',
  health_metrics_and_measurements: 'See your health metrics and measurements (heart rate, weight, body fat)',
  sleep: 'See your sleep data',
  location: 'See your location data',
}

function scopeLabel(scope: string): string {
  if (scope.startsWith(HEALTH_SCOPE_PREFIX)) return HEALTH_SCOPE_LABELS[scope.slice(HEALTH_SCOPE_PREFIX.length).replace(/\.readonly$/, '')] ?? scope
  const group = scope.startsWith(FITNESS_SCOPE_PREFIX) ? scope.slice(FITNESS_SCOPE_PREFIX.length).replace(/\.(read|write)$/, '') : undefined
  return (group === undefined ? undefined : SCOPE_LABELS[group]) ?? scope
}

function consentPage(requestId: string, request: AuthorizationRequest, account: string): string {
  const items = request.scopes
    .filter((s) => !IDENTITY_SCOPES.has(s))
    .map((s) => `<li><label><input type="checkbox" name="scope" value="${escapeHtml(s)}" checked> ${escapeHtml(scopeLabel(s))}</label></li>`)
    .join('\n')
  return page(
    'Sign in - Google Accounts',
    `<h1>Sign in with Google</h1>
<p class="note">Local stand-in for accounts.google.com</p>
<form method="post">
<input type="hidden" name="request_id" value="${requestId}">
<p><label>Account <input name="account" value="${escapeHtml(account)}" autocomplete="off"></label></p>
<p><strong>${escapeHtml(new URL(request.redirectUri).host)}</strong> wants access to your Google Account${request.offline ? ', also when you are not using it' : ''}:</p>
<ul class="scopes">
${items}
</ul>
<p><button type="submit" name="decision" value="deny">Deny</button> <button type="submit" name="decision" value="allow">Allow</button></p>
</form>`,
  )
}

function errorPage(error: string, description: string): string {
  return page(
    'Error - Google Accounts',
    `<h1>Access blocked: this request is invalid</h1><p>${escapeHtml(description)}</p><p>Error 400: ${escapeHtml(error)}</p>`,
  )
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:sans-serif;max-width:34rem;margin:3rem auto;color:#202124}.note{color:#5f6368;font-size:.85rem}
ul.scopes{list-style:none;padding:0}ul.scopes li{padding:.4rem 0;border-bottom:1px solid #dadce0}
button{padding:.5rem 1.4rem;font-size:1rem}button[value=allow]{background:#1a73e8;color:#fff;border:0;border-radius:4px}</style>
</head><body>${body}</body></html>`
}

function writeHtml(res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return
  res.statusCode = status
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value)
  res.setHeader('content-type', 'text/html; charset=utf-8')
  res.setHeader('cache-control', 'no-store')
  res.end(html)
}

function redirect(res: ServerResponse, target: URL): void {
  res.statusCode = 302
  res.setHeader('location', target.toString())
  res.setHeader('cache-control', 'no-store')
  res.end()
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=')
    if (key === name) {
      try {
        return decodeURIComponent(rest.join('='))
      } catch {
        return undefined
      }
    }
  }
  return undefined
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}
