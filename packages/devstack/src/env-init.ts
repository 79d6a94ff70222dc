import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { generateDevSecrets } from './secrets.js'

/**
 * `npm run env:init`: writes .env from .env.example with fresh secrets filled in, and says which
 * values only the operator can provide (the Google OAuth client, the publisher's key).
 */
const root = fileURLToPath(new URL('../../../', import.meta.url))
const target = `${root}.env`
if (existsSync(target) && !process.argv.includes('--force')) {
  process.stderr.write('.env exists already; run with --force to replace it\n')
  process.exit(1)
}
const secrets: Record<string, string> = generateDevSecrets()
const missing: string[] = []
const lines = readFileSync(`${root}.env.example`, 'utf8')
  .split('\n')
  .map((line) => {
    const match = /^([A-Z0-9_]+)=$/.exec(line)
    if (match === null) return line
    const key = match[1]!
    if (secrets[key] !== undefined) return `${key}=${secrets[key]}`
    if (['GOOGLE_CLIENT_ID', 'GOOGLE_CLIENT_SECRET', 'STREAMR_PRIVATE_KEY'].includes(key)) missing.push(key)
    return line
  })
writeFileSync(target, lines.join('\n'), { mode: 0o600 })
process.stdout.write(`wrote .env with fresh secrets (mode 600)\nstill to fill in: ${missing.join(', ')}\n`)
