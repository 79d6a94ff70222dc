import { execFile } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import type { z } from 'zod'
import { generateKeyringEntry } from '@fitstream/shared'
import { anonymizerEnvSchema } from '../services/anonymizer/src/config.js'
import { fetcherEnvSchema } from '../services/fetcher/src/config.js'
import { publisherEnvSchema } from '../services/publisher/src/config.js'
import { tokenServiceEnvSchema } from '../services/token-service/src/config.js'

/**
 * The compose file read the way compose reads it: every service present, each one's environment
 * (its `environment:` interpolated from an operator's .env) accepted by that service's own
 * configuration schema, and holding nothing another service needs. The stack itself is run for real
 * by the compose stack test (tests/compose-stack).
 */
const root = new URL('../', import.meta.url)
const compose = parse(readFileSync(new URL('docker-compose.yml', root), 'utf8'), { merge: true }) as {
  services: Record<
    string,
    {
      command?: string[]
      entrypoint?: string[]
      environment?: Record<string, string>
      ports?: string[]
      healthcheck?: { test: string[] }
      depends_on?: Record<string, { condition: string }>
      env_file?: string
      restart?: string
      networks?: string[]
    }
  >
}
const example = parseDotEnv(readFileSync(new URL('.env.example', root), 'utf8'))

const hasDockerCompose = await promisify(execFile)('docker-compose', ['version']).then(
  () => true,
  () => false,
)

const schemas: Record<string, z.ZodObject> = {
  'token-service': tokenServiceEnvSchema,
  fetcher: fetcherEnvSchema,
  anonymizer: anonymizerEnvSchema,
  publisher: publisherEnvSchema,
}

/** What an operator fills in for the empty secrets of .env.example. */
const filledIn: Record<string, string> = {
  ADMIN_TOKEN: 'a'.repeat(48),
  INTERNAL_API_TOKEN: 'b'.repeat(48),
  SESSION_SECRET: 'c'.repeat(48),
  GOOGLE_CLIENT_ID: 'client.apps.googleusercontent.com',
  GOOGLE_CLIENT_SECRET: 'secret',
  REFRESH_TOKEN_KEYS: generateKeyringEntry('r1'),
  ACCESS_TOKEN_KEYS: generateKeyringEntry('a1'),
  PSEUDONYM_KEY: Buffer.alloc(32, 7).toString('base64'),
  STREAMR_PRIVATE_KEY: `0x${'11'.repeat(32)}`,
  GRAFANA_ADMIN_PASSWORD: 'grafana-password-for-the-test',
  REDIS_PASSWORD: 'd'.repeat(48),
  ACCOUNT_ID_KEY: 'e'.repeat(48),
}

/** Secrets and who alone may hold them. */
const SECRET_HOLDERS: Record<string, string[]> = {
  REFRESH_TOKEN_KEYS: ['token-service'],
  SESSION_SECRET: ['token-service'],
  ACCOUNT_ID_KEY: ['token-service'],
  ADMIN_TOKEN: ['token-service'],
  GOOGLE_CLIENT_SECRET: ['token-service'],
  ACCESS_TOKEN_KEYS: ['fetcher', 'token-service'],
  INTERNAL_API_TOKEN: ['fetcher', 'membership', 'token-service'],
  PSEUDONYM_KEY: ['anonymizer'],
  STREAMR_PRIVATE_KEY: ['membership', 'publisher'],
  MEMBER_KEYS: ['membership'],
  MEMBER_REF_KEY: ['token-service'],
  GRAFANA_ADMIN_PASSWORD: ['grafana'],
}

describe('docker-compose.yml', () => {
  it('runs Redis durably and behind a password: append-only file, no eviction, a volume and a healthcheck', () => {
    const redis = compose.services.redis!
    const start = redis.entrypoint?.join(' ') ?? ''
    expect(start).toMatch(/--appendonly yes/)
    expect(start).toMatch(/--maxmemory-policy noeviction/)
    // From the environment into a configuration file, never on the command line.
    expect(start).toMatch(/requirepass %s.*\$\$REDIS_PASSWORD.*redis-server \/tmp\/redis\.conf /)
    expect(redis.healthcheck?.test.join(' ')).toMatch(/redis-cli ping/)
  })

  it('keeps Redis on a network of its own, with no port on the host', () => {
    const redis = compose.services.redis!
    expect(redis.networks).toEqual(['backend'])
    expect(redis.ports).toBeUndefined()
    expect((compose as unknown as { networks: Record<string, { internal?: boolean }> }).networks.backend?.internal).toBe(true)
  })

  it.each(Object.keys(schemas))('runs %s from its built entry point with a healthcheck on /readyz, after Redis is healthy', (name) => {
    const service = compose.services[name]!
    expect(service.command).toEqual(['node', `services/${name}/dist/main.js`])
    expect(service.healthcheck?.test.join(' ')).toContain(`127.0.0.1:${service.environment?.HTTP_PORT}/readyz`)
    expect(service.depends_on?.redis?.condition).toBe('service_healthy')
    expect(service.restart).toBe('unless-stopped')
  })

  it.each(Object.keys(schemas))("gives %s every variable its configuration requires, from the operator's .env", (name) => {
    const service = compose.services[name]!
    expect(service.env_file).toBeUndefined()
    const env = interpolate(service.environment ?? {}, fill(example))
    const result = schemas[name]!.safeParse(pickKeys(schemas[name]!, env))
    expect(result.success ? [] : result.error.issues.map((i) => `${String(i.path[0])}: ${i.message}`)).toEqual([])
  })

  it.each(Object.keys(schemas))('passes %s each of its variables an operator sets in .env, and no other', (name) => {
    const service = compose.services[name]!
    const own = new Set(Object.keys(schemas[name]!.shape))
    const given = Object.keys(service.environment ?? {})
    // XDG_DATA_HOME is where the Streamr SDK keeps the streams' keys.
    expect(given.filter((key) => !own.has(key) && key !== 'XDG_DATA_HOME')).toEqual([])
    expect(Object.keys(example).filter((key) => own.has(key) && !given.includes(key))).toEqual([])
  })

  it('gives each secret only to the services that use it', () => {
    const holders = Object.fromEntries(
      Object.keys(SECRET_HOLDERS).map((secret) => [
        secret,
        Object.entries(compose.services)
          .filter(([, service]) => Object.values(service.environment ?? {}).some((value) => String(value).includes(`\${${secret}`)))
          .map(([name]) => name)
          .sort(),
      ]),
    )
    expect(holders).toEqual(SECRET_HOLDERS)
  })

  it("publishes the publisher's Streamr port, TCP for WebSocket and UDP for WebRTC", () => {
    expect(compose.services.publisher!.ports).toEqual([
      '${STREAMR_WEBSOCKET_PORT:-32200}:${STREAMR_WEBSOCKET_PORT:-32200}/tcp',
      '${STREAMR_WEBSOCKET_PORT:-32200}:${STREAMR_WEBSOCKET_PORT:-32200}/udp',
    ])
    // The port the node listens on is the one .env gives (32200 in .env.example); empty runs no fixed port.
    expect(compose.services.publisher!.environment?.STREAMR_WEBSOCKET_PORT).toBe('${STREAMR_WEBSOCKET_PORT:-}')
  })

  it('declares in .env.example every variable any service reads', () => {
    const provided = new Set([...Object.keys(example), ...Object.values(compose.services).flatMap((s) => Object.keys(s.environment ?? {}))])
    const read = new Set(Object.values(schemas).flatMap((schema) => Object.keys(schema.shape)))
    // The HTTP host is fixed inside containers; everything else must be documented for operators.
    read.delete('HTTP_HOST')
    read.delete('SHUTDOWN_TIMEOUT_MS')
    // Fault injection for the crash tests, never set in a deployment.
    read.delete('PUBLISH_CRASH_AT')
    expect([...read].filter((key) => !provided.has(key)).sort()).toEqual([])
  })

  it('lets fetchers scale: no fixed host port, and they find the token service by name on its internal port', () => {
    const fetcher = compose.services.fetcher!
    expect(fetcher.ports).toBeUndefined()
    const internalPort = compose.services['token-service']!.environment?.INTERNAL_HTTP_PORT
    expect(fetcher.environment?.TOKEN_SERVICE_URL).toBe(`http://token-service:${internalPort}`)
    expect(compose.services['token-service']!.ports?.join(' ')).not.toContain(`:${internalPort}`)
    expect(fetcher.depends_on?.['token-service']?.condition).toBe('service_healthy')
  })

  it('ships no secret in .env.example', () => {
    for (const key of Object.keys(filledIn)) expect(example[key], key).toBe('')
  })

  // Debian's docker-compose validates without an engine; .ci/run installs it. Reported as skipped where absent.
  it.runIf(hasDockerCompose)('is valid compose syntax (docker-compose config), monitoring password or not', async () => {
    // Every service defined, those of the monitoring profile included, with or without Grafana's password.
    for (const env of [fill(example), { ...fill(example), GRAFANA_ADMIN_PASSWORD: '' }]) {
      const { stdout } = await composeConfig(env)
      expect(stdout.trim().split('\n').sort()).toEqual(['anonymizer', 'fetcher', 'grafana', 'membership', 'prometheus', 'publisher', 'redis', 'token-service'])
    }
  })

  it.runIf(hasDockerCompose)('refuses a half-filled .env before starting anything, naming what is missing', async () => {
    const failure = await composeConfig({ ...fill(example), PSEUDONYM_KEY: '' }).then(
      () => 'no error',
      (error: { stderr: string }) => error.stderr,
    )
    expect(failure).toContain('set PSEUDONYM_KEY in .env')
  })
})

async function composeConfig(env: Record<string, string>): Promise<{ stdout: string }> {
  // compose reads the .env beside the file; an operator's is .env.example filled in.
  const dir = mkdtempSync(join(tmpdir(), 'fitstream-compose-'))
  try {
    copyFileSync(new URL('docker-compose.yml', root), join(dir, 'docker-compose.yml'))
    writeFileSync(
      join(dir, '.env'),
      Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n'),
    )
    return await promisify(execFile)('docker-compose', ['config', '--services'], { cwd: dir })
  } finally {
    rmSync(dir, { recursive: true })
  }
}

/** Compose's interpolation of `${VAR}`, `${VAR:-default}` and `${VAR:?message}` from .env. */
function interpolate(environment: Record<string, string>, env: Record<string, string>): Record<string, string> {
  const one = (value: string) =>
    value.replace(/\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g, (_, name: string, kind: string | undefined, rest: string) => {
      const set = env[name] !== undefined && env[name] !== ''
      if (set) return env[name]!
      if (kind === '?') throw new Error(`compose would stop: ${rest}`)
      return kind === '-' ? rest : ''
    })
  return Object.fromEntries(Object.entries(environment).map(([key, value]) => [key, one(String(value))]))
}

describe('the image', () => {
  it('ships every service and the workspaces they use, and none of the test kits', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [join(fileURLToPath(root), 'deploy/image-workspaces.mjs'), 'list'])
    const shipped = stdout.trim().split('\n')
    expect(shipped).toEqual(
      expect.arrayContaining([
        'packages/shared',
        'packages/node-datachannel-compat',
        'services/token-service',
        'services/fetcher',
        'services/anonymizer',
        'services/publisher',
      ]),
    )
    for (const kit of ['packages/devstack', 'packages/fake-google', 'packages/streamr-local', 'tests']) expect(shipped).not.toContain(kit)
  })
})

function parseDotEnv(text: string): Record<string, string> {
  const entries = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const)
  return Object.fromEntries(entries)
}

function fill(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === '' ? (filledIn[k] ?? '') : v]))
}

function pickKeys(schema: z.ZodObject, env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.keys(schema.shape).flatMap((key) => (env[key] === undefined || env[key] === '' ? [] : [[key, env[key]]])))
}
