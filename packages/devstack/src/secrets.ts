import { randomBytes } from 'node:crypto'
import { generateKeyringEntry } from '@fitstream/shared'

/** Fresh secrets for one local run; nothing here is ever a real credential. */
export function generateDevSecrets() {
  return {
    ADMIN_TOKEN: randomBytes(24).toString('hex'),
    INTERNAL_API_TOKEN: randomBytes(24).toString('hex'),
    REFRESH_TOKEN_KEYS: generateKeyringEntry('dev-refresh-1'),
    ACCESS_TOKEN_KEYS: generateKeyringEntry('dev-access-1'),
    PSEUDONYM_KEY: randomBytes(32).toString('base64'),
    SESSION_SECRET: randomBytes(32).toString('base64'),
    ACCOUNT_ID_KEY: randomBytes(32).toString('base64'),
    GRAFANA_ADMIN_PASSWORD: randomBytes(18).toString('base64url'),
    // Hex: it goes into REDIS_URL, where base64's '/' and '+' would need escaping.
    REDIS_PASSWORD: randomBytes(24).toString('hex'),
  }
}

export type DevSecrets = ReturnType<typeof generateDevSecrets>
