import { chromium, type Browser } from 'playwright-core'
import { expect } from 'vitest'
import { FAKE_FIT_CLOSES_AT, type FakeGoogle, type FakeUser } from '@fitstream/fake-google'
import { generateKeyringEntry, type DataTypeKey, type Env, type ServiceRuntime } from '@fitstream/shared'
import { redisUrl } from '../../../tests/helpers.js'

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

export async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/**
 * Where browser tests save screenshots: docs/screenshots when UPDATE_SCREENSHOTS=1 (to refresh the
 * README's pictures), otherwise a temporary folder, so a test run leaves the tree unchanged.
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
