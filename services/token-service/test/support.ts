import { mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, expect } from 'vitest'
import { FAKE_FIT_CLOSES_AT, FakeGoogle, type FakeUser } from '@fitstream/fake-google'
import { generateKeyringEntry, waitForRedis, type DataTypeKey, type Env, type ServiceRuntime } from '@fitstream/shared'
import { redisUrl, silentLogger } from '../../../tests/helpers.js'
import { loadConfig } from '../src/config.js'
import { createTokenService } from '../src/service.js'

export const ADMIN = 'admin-token-for-tests-0123456789abcdef'
export const INTERNAL = 'internal-token-for-tests-0123456789abc'

/** A token-service environment pointing at the fake Google. */
export function testEnv(google: FakeGoogle, prefix: string, extra: Env = {}): Env {
  return {
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'silent',
    ADMIN_TOKEN: ADMIN,
    INTERNAL_API_TOKEN: INTERNAL,
    GOOGLE_CLIENT_ID: google.clientId,
    GOOGLE_CLIENT_SECRET: google.clientSecret,
    GOOGLE_TOKEN_URL: google.tokenUrl,
    GOOGLE_AUTH_URL: google.authorizeUrl,
    GOOGLE_REVOKE_URL: google.revokeUrl,
    PUBLIC_URL: 'http://fitstream.test',
    SESSION_SECRET: 'session-secret-for-tests-0123456789abcdef',
    REFRESH_TOKEN_KEYS: generateKeyringEntry('r1'),
    ACCESS_TOKEN_KEYS: generateKeyringEntry('a1'),
    BACKFILL_DAYS: '2',
    // These tests were written for Fit deployments; those of the Health API say so.
    GOOGLE_DATA_API: 'fit',
    GOOGLE_FIT_CLOSES_AT: FAKE_FIT_CLOSES_AT,
    // Every test request comes from one address; the tests of the limits set their own.
    RATE_LIMIT_PAGES_PER_MINUTE: '100000',
    RATE_LIMIT_CALLBACK_PER_MINUTE: '100000',
    RATE_LIMIT_AUTH_FAILURES: '100000',
    RATE_LIMIT_RECONSENTS_PER_HOUR: '100000',
    ...extra,
  }
}

/** A new fake Google user, registered through the token service's admin API. */
export async function registerUser(
  service: ServiceRuntime,
  google: FakeGoogle,
  adminToken: string,
  dataTypes: readonly DataTypeKey[],
  scopes?: string[],
  seed?: string,
): Promise<{ id: string; google: FakeUser }> {
  const user = google.addUser({ ...(scopes === undefined ? {} : { scopes }), ...(seed === undefined ? {} : { seed }) })
  const response = await service.server.inject({
    method: 'POST',
    url: '/users',
    headers: { authorization: `Bearer ${adminToken}` },
    payload: { refreshToken: user.refreshToken, dataTypes },
  })
  expect(response.statusCode).toBe(201)
  return { id: (response.json() as { id: string }).id, google: user }
}

/** A browser's cookie jar in front of `inject()`: keeps what the service sets, sends it back, forgets what it clears. */
export class WebClient {
  private readonly jar = new Map<string, string>()
  /** The CSRF token of the last form this browser was shown. */
  csrf = ''

  /** `remoteAddress`: the IP the service sees (rate limits are per IP). */
  constructor(private readonly remoteAddress = '127.0.0.1') {}

  get cookie(): string {
    return [...this.jar].map(([name, value]) => `${name}=${value}`).join('; ')
  }

  /** The session id the browser holds (unsigned), if any. */
  sessionId(name = 'fitstream_session'): string | undefined {
    const raw = this.jar.get(name)
    return raw === undefined ? undefined : decodeURIComponent(raw).split('.')[0]
  }

  /** A cookie as the jar holds it (URL-encoded), e.g. to plant it in another browser. */
  raw(name: string): string | undefined {
    return this.jar.get(name)
  }

  set(name: string, value: string): void {
    this.jar.set(name, value)
  }

  async get(service: ServiceRuntime, url: string) {
    return this.keep(await service.server.inject({ method: 'GET', url, headers: this.headers(), remoteAddress: this.remoteAddress }))
  }

  async post(service: ServiceRuntime, url: string, form: string) {
    return this.send(service, url, 'application/x-www-form-urlencoded', form)
  }

  /** A `fetch()` of the page's script: a JSON body, the browser's cookies. */
  async postJson(service: ServiceRuntime, url: string, body: unknown) {
    return this.send(service, url, 'application/json', JSON.stringify(body))
  }

  private async send(service: ServiceRuntime, url: string, contentType: string, payload: string) {
    const headers = { ...this.headers(), 'content-type': contentType }
    return this.keep(await service.server.inject({ method: 'POST', url, headers, payload, remoteAddress: this.remoteAddress }))
  }

  private headers(): Record<string, string> {
    return this.jar.size === 0 ? {} : { cookie: this.cookie }
  }

  private keep<T extends { cookies: { name: string; value: string; maxAge?: number; expires?: Date }[] }>(response: T): T {
    for (const c of response.cookies) {
      if (c.value === '' || c.maxAge === 0 || (c.expires !== undefined && c.expires.getTime() <= Date.now())) this.jar.delete(c.name)
      else this.jar.set(c.name, encodeURIComponent(c.value))
    }
    return response
  }
}

/** What a person does on Google's consent screen: signs in as `account` and allows every scope; answers where Google sends them back to. */
export async function consentAtGoogle(authorize: URL, account: string): Promise<URL> {
  const html = await (await fetch(authorize)).text()
  const answer = new URLSearchParams({ request_id: /name="request_id" value="([^"]+)"/.exec(html)![1]!, decision: 'allow', account })
  for (const [, scope] of html.matchAll(/name="scope" value="([^"]+)"/g)) answer.append('scope', scope!)
  const response = await fetch(`${authorize.origin}${authorize.pathname}`, { method: 'POST', body: answer, redirect: 'manual' })
  expect(response.status).toBe(302)
  return new URL(response.headers.get('location')!)
}

export async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/**
 * Where browser tests save screenshots: docs/screenshots when UPDATE_SCREENSHOTS=1 (to refresh the
 * pictures in docs/onboarding.md and docs/operating.md), otherwise a temporary folder, so a test run leaves the tree unchanged.
 */
export const SCREENSHOTS =
  process.env.UPDATE_SCREENSHOTS === '1'
    ? new URL('../../../docs/screenshots/', import.meta.url).pathname
    : `${(await import('node:os')).tmpdir()}/fitstream-screenshots/`

export const CHROMIUM = '/usr/bin/chromium'

/** Debian's Chromium, headless, in a fresh profile, kept off the network it can't reach anyway. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}

/**
 * A token service on a real loopback port (what a browser needs), its PUBLIC_URL that address; named
 * `localhost` when `host` says so (WebAuthn accepts no IP address as a relying party ID).
 */
export async function listeningTokenService(
  google: FakeGoogle,
  prefix: string,
  host: '127.0.0.1' | 'localhost' = '127.0.0.1',
): Promise<{ service: ServiceRuntime; publicUrl: string }> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as { port: number }
  await new Promise((resolve) => probe.close(resolve))
  const publicUrl = `http://${host}:${port}`
  const service = await createTokenService(loadConfig(testEnv(google, prefix, { PUBLIC_URL: publicUrl })), silentLogger())
  await waitForRedis(service.redis)
  await service.server.listen({ host: '127.0.0.1', port })
  return { service, publicUrl }
}

/** What a browser test drives: the fake Google, a token service on a loopback port, and Debian's Chromium. */
export interface BrowserWorld {
  readonly google: FakeGoogle
  readonly service: ServiceRuntime
  /** The service's PUBLIC_URL: the address the browser reaches it at. */
  readonly publicUrl: string
  readonly browser: Browser
}

export interface BrowserWorldOptions {
  /** The name the browser reaches the service by (listeningTokenService's `host`); default '127.0.0.1'. */
  readonly host?: '127.0.0.1' | 'localhost'
  /** Runs once the service listens, before the browser starts: what the test's pages should find. Default: nothing. */
  readonly prepare?: (world: Omit<BrowserWorld, 'browser'>) => Promise<void>
}

/**
 * Starts a BrowserWorld before the enclosing describe's tests and stops it after them, then runs
 * `cleanup` (testRedis's, removing what the service left under the test's prefix). Call it inside
 * the describe that runs only where Chromium is, so a machine without one starts nothing.
 */
export function useBrowserWorld(prefix: string, cleanup: () => Promise<void>, options: BrowserWorldOptions = {}): BrowserWorld {
  let google: FakeGoogle | undefined
  let listening: { service: ServiceRuntime; publicUrl: string } | undefined
  let browser: Browser | undefined
  beforeAll(async () => {
    google = await FakeGoogle.start()
    listening = await listeningTokenService(google, prefix, options.host)
    await options.prepare?.({ google, ...listening })
    mkdirSync(SCREENSHOTS, { recursive: true })
    browser = await launchChromium()
  })
  afterAll(async () => {
    await browser?.close()
    await listening?.service.close()
    await google?.close()
    await cleanup()
  })
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the browser world is used before its beforeAll has run')
    return value
  }
  return {
    get google() {
      return started(google)
    },
    get service() {
      return started(listening).service
    },
    get publicUrl() {
      return started(listening).publicUrl
    },
    get browser() {
      return started(browser)
    },
  }
}

/** What a person does on the account page to upload an export: picks the file as export.zip, presses Upload. */
export async function uploadExport(page: Page, zip: Buffer): Promise<void> {
  await page.locator('#import-form input[type=file]').setInputFiles({ name: 'export.zip', mimeType: 'application/zip', buffer: zip })
  await page.getByRole('button', { name: 'Upload' }).click()
}
