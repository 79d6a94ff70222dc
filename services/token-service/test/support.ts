import { chromium, type Browser } from 'playwright-core'
import type { FakeGoogle } from '@fitstream/fake-google'
import { generateKeyringEntry, type Env } from '@fitstream/shared'
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
    ...extra,
  }
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
