import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ALL_HEALTH_READ_SCOPES, FakeGoogle } from '@fitstream/fake-google'
import { generateDevSecrets, recordsOf, Subscriber } from '@fitstream/devstack'
import { freePort, startLocalStreamrNetwork, type LocalStreamrNetwork } from '@fitstream/streamr-local'

/**
 * FitStream as a user runs it: the image built from the Dockerfile, the stack brought up from the
 * shipped docker-compose.yml with a .env made as the README says (.env.example, secrets filled in),
 * on a real Docker engine. Only the internet is replaced: the fake Google and a local Streamr
 * network run on this host, on the Docker bridge's address so that containers reach them. The buyer
 * runs on the host, outside the compose network, with no server of its own: it can only dial the
 * publisher's published port.
 *
 * Run by `npm run test:compose` (in CI after the engine and base images are set up; see .ci/run).
 */
const exec = promisify(execFile)
const root = fileURLToPath(new URL('../', import.meta.url))
const project = `fitstreamci${randomBytes(4).toString('hex')}`
const workDir = mkdtempSync(join(tmpdir(), 'fitstream-compose-stack-'))
const envFile = join(workDir, '.env')
const SERVICES = ['token-service', 'fetcher', 'anonymizer', 'publisher'] as const
const TYPES = ['steps', 'calories', 'heart_rate'] as const

let google: FakeGoogle
let network: LocalStreamrNetwork
let buyer: Subscriber
let env: Record<string, string>
let streams: string[] = []
const users: string[] = []

async function compose(args: string[], timeoutMs = 600_000): Promise<string> {
  const { stdout } = await exec(
    'docker-compose',
    ['-f', join(root, 'docker-compose.yml'), '--project-directory', root, '--env-file', envFile, '-p', project, ...args],
    {
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
    },
  )
  return stdout
}

async function docker(args: string[]): Promise<string> {
  return (await exec('docker', args, { maxBuffer: 64 * 1024 * 1024 })).stdout
}

async function containers(service: string): Promise<string[]> {
  return (await compose(['ps', '-q', service])).split('\n').filter((id) => id !== '')
}

async function waitHealthy(timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ids = (await Promise.all(SERVICES.map(containers))).flat()
    const states = await Promise.all(ids.map(async (id) => (await docker(['inspect', '-f', '{{.Name}} {{.State.Health.Status}}', id])).trim()))
    if (ids.length >= SERVICES.length && states.every((s) => s.endsWith(' healthy'))) return
    if (Date.now() > deadline)
      throw new Error(`the stack is not healthy after ${timeoutMs} ms: ${states.join(', ')}\n${await compose(['logs', '--no-color', '--tail', '30'])}`)
    await new Promise((resolve) => setTimeout(resolve, 2_000))
  }
}

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`http://127.0.0.1:${env.TOKEN_SERVICE_PORT}${path}`, {
    method,
    headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return { status: response.status, body: (await response.json().catch(() => ({}))) as Record<string, unknown> }
}

async function registerUser(seed: string): Promise<{ userId: string; secrets: string[] }> {
  const person = google.addUser({ seed, scopes: [...ALL_HEALTH_READ_SCOPES] })
  const response = await api('POST', '/users', { refreshToken: person.refreshToken, dataTypes: TYPES })
  expect(response.status, JSON.stringify(response.body)).toBe(201)
  const userId = response.body.id as string
  users.push(userId)
  return { userId, secrets: [userId, person.googleId, person.refreshToken, seed] }
}

/** Records the buyer has received, by pseudonym. */
function recordsByPseudonym(): Map<string, number> {
  const counts = new Map<string, number>()
  for (const record of buyer.messages.flatMap((message) => recordsOf(message.content))) counts.set(record.pseudonym, (counts.get(record.pseudonym) ?? 0) + 1)
  return counts
}

async function metric(container: string, port: number, name: string, label: string): Promise<number> {
  const text = await docker(['exec', container, 'node', '-e', `fetch('http://127.0.0.1:${port}/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))`])
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(label))
  return line === undefined ? 0 : Number(line.split(' ').pop())
}

beforeAll(async () => {
  // The engine's bridge address is this host as every container sees it.
  const bridge = (await docker(['network', 'inspect', 'bridge', '-f', '{{index .Options "com.docker.network.bridge.name"}}'])).trim() || 'docker0'
  // Read with ip(8): Node lists no interface that is down, as the bridge is while no container uses it.
  const host = /inet (\d+\.\d+\.\d+\.\d+)\//.exec((await exec('ip', ['-4', '-o', 'addr', 'show', 'dev', bridge])).stdout)?.[1]
  if (host === undefined) throw new Error(`the Docker bridge ${bridge} has no IPv4 address on this host`)
  ;[google, network] = await Promise.all([FakeGoogle.start({ host }), startLocalStreamrNetwork({ host })])
  const ep = network.entryPoint
  const secrets = generateDevSecrets()
  // .env as the README makes it: .env.example with the empty values filled in.
  const filled: Record<string, string> = {
    ...secrets,
    REDIS_PASSWORD: randomBytes(24).toString('hex'),
    GOOGLE_CLIENT_ID: google.clientId,
    GOOGLE_CLIENT_SECRET: google.clientSecret,
    STREAMR_PRIVATE_KEY: network.accounts[1]!.privateKey,
  }
  const local: Record<string, string> = {
    TOKEN_SERVICE_PORT: String(await freePort()),
    GOOGLE_TOKEN_URL: google.tokenUrl,
    GOOGLE_AUTH_URL: google.authorizeUrl,
    GOOGLE_REVOKE_URL: google.revokeUrl,
    GOOGLE_FITNESS_ROOT_URL: google.rootUrl,
    GOOGLE_HEALTH_ROOT_URL: google.rootUrl,
    BACKFILL_DAYS: '1',
    SYNC_LOOKBACK_HOURS: '24',
    // Release slots as in production (fitstream.records/2), five seconds long instead of an hour.
    PUBLISH_SLOT_MS: '5000',
    // Everyone opted in to individual records, as the devstack's stacks run: one person makes no cohort.
    ANONYMIZER_POLICY_FILE: '/app/services/anonymizer/policies/opted-in.yaml',
    STREAMR_ENVIRONMENT: 'dev2',
    STREAMR_ENTRY_POINTS: `${ep.nodeId}@ws://${ep.websocket.host}:${ep.websocket.port}`,
    STREAMR_RPC_URL: network.rpcUrl,
    STREAMR_CHAIN_ID: String(network.chainId),
    STREAMR_STREAM_REGISTRY_ADDRESS: network.streamRegistryAddress,
    STREAMR_THE_GRAPH_URL: 'http://127.0.0.1:1/the-graph-is-not-available-locally',
    STREAMR_WEBSOCKET_HOST: host,
    STREAMR_WEBSOCKET_PORT: String(await freePort()),
  }
  local.PUBLIC_URL = `http://127.0.0.1:${local.TOKEN_SERVICE_PORT}`
  const lines = readFileSync(join(root, '.env.example'), 'utf8')
    .split('\n')
    .map((line) => {
      const key = /^([A-Z0-9_]+)=/.exec(line)?.[1]
      if (key === undefined) return line
      const value = local[key] ?? (line.endsWith('=') ? filled[key] : undefined)
      return value === undefined ? line : `${key}=${value}`
    })
  writeFileSync(envFile, lines.join('\n'), { mode: 0o600 })
  env = Object.fromEntries(lines.filter((l) => /^[A-Z0-9_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))

  // One image serves the four services: building it for one builds it for all.
  await compose(['build', 'token-service'], 1_500_000)
  // The operator command from the image, as the README has it: streams and the buyer's access.
  const provisioned = await compose([
    'run',
    '--rm',
    '-T',
    '--no-deps',
    'publisher',
    'fitstream',
    'streams',
    'provision',
    '--grant-subscribe',
    network.accounts[2]!.address,
  ])
  streams = (JSON.parse(provisioned.trim().split('\n').pop()!) as { streams: { id: string }[] }).streams.map((s) => s.id)
  await compose(['up', '-d'])
  await waitHealthy()

  // A buyer with no server of its own (as behind NAT): it reaches the publisher only by dialling it.
  const config = await network.clientConfig({ privateKey: network.accounts[2]!.privateKey })
  const controlLayer = config.network.controlLayer as unknown as Record<string, unknown>
  controlLayer.websocketPortRange = null
  controlLayer.peerDescriptor = { nodeId: randomBytes(20).toString('hex') }
  delete controlLayer.websocketServerEnableTls
  buyer = await Subscriber.start(config, streams, { XDG_DATA_HOME: mkdtempSync(join(workDir, 'buyer-')) })
}, 1_800_000)

afterAll(async () => {
  await buyer?.stop()
  await compose(['down', '-v', '--remove-orphans'], 180_000).catch(() => undefined)
  await Promise.all([google?.close(), network?.stop()])
  rmSync(workDir, { recursive: true, force: true })
}, 300_000)

describe('docker compose, run as the README says', () => {
  it('delivers a registered person’s data, anonymised, to a buyer outside the compose network with no port of its own', async () => {
    const person = await registerUser('compose-person-1')
    await buyer.waitFor((messages) => messages.reduce((n, m) => n + recordsOf(m.content).length, 0) >= 24, 180_000)
    const everything = JSON.stringify(buyer.messages)
    for (const secret of person.secrets) expect(everything).not.toContain(secret)
    expect(new Set(buyer.messages.map((m) => m.streamId.split('/').pop()))).toEqual(new Set(TYPES))
  })

  it('gives each container only the secrets its service needs', async () => {
    const holders: Record<string, string[]> = {
      REFRESH_TOKEN_KEYS: ['token-service'],
      SESSION_SECRET: ['token-service'],
      ADMIN_TOKEN: ['token-service'],
      GOOGLE_CLIENT_SECRET: ['token-service'],
      ACCESS_TOKEN_KEYS: ['fetcher', 'token-service'],
      INTERNAL_API_TOKEN: ['fetcher', 'token-service'],
      PSEUDONYM_KEY: ['anonymizer'],
      STREAMR_PRIVATE_KEY: ['publisher'],
    }
    const found: Record<string, string[]> = Object.fromEntries(Object.keys(holders).map((k) => [k, []]))
    for (const service of SERVICES) {
      const [id] = await containers(service)
      const containerEnv = JSON.parse(await docker(['inspect', '-f', '{{json .Config.Env}}', id!])) as string[]
      for (const secret of Object.keys(holders)) {
        if (containerEnv.some((entry) => entry.includes(env[secret]!))) found[secret]!.push(service)
      }
    }
    for (const list of Object.values(found)) list.sort()
    expect(found).toEqual(holders)
  })

  it('logs only JSON lines, the Streamr SDK’s included', async () => {
    for (const service of SERVICES) {
      const [id] = await containers(service)
      const { stdout, stderr } = await exec('docker', ['logs', id!], { maxBuffer: 64 * 1024 * 1024 })
      const lines = `${stdout}\n${stderr}`.split('\n').filter((line) => line.trim() !== '')
      expect(lines.length).toBeGreaterThan(0)
      expect(lines.filter((line) => !isJson(line)).slice(0, 3), service).toEqual([])
    }
  })

  it('shares the work among fetchers scaled with --scale fetcher=3', async () => {
    await compose(['up', '-d', '--scale', 'fetcher=3'])
    await waitHealthy()
    const fetchers = await containers('fetcher')
    expect(fetchers).toHaveLength(3)
    const before = await Promise.all(fetchers.map((id) => metric(id, 8081, 'fitstream_jobs_completed_total', 'queue="fetch"')))
    for (let i = 0; i < 6; i++) await registerUser(`compose-scaled-${i}`)
    await expect
      .poll(
        async () =>
          (await Promise.all(fetchers.map((id) => metric(id, 8081, 'fitstream_jobs_completed_total', 'queue="fetch"')))).map((n, i) => n - before[i]!),
        {
          timeout: 180_000,
          interval: 2_000,
        },
      )
      .toSatisfy((done: number[]) => done.filter((n) => n > 0).length >= 2 && done.reduce((a, b) => a + b, 0) >= 6)
  })

  it('resumes publishing after the publisher restarts', async () => {
    await compose(['restart', 'publisher'])
    await waitHealthy()
    const seen = new Set(recordsByPseudonym().keys())
    await registerUser('compose-after-restart')
    await expect.poll(() => [...recordsByPseudonym().keys()].filter((p) => !seen.has(p)).length, { timeout: 180_000, interval: 1_000 }).toBeGreaterThan(0)
  })

  it('keeps people and the streams’ keys over down and up', async () => {
    // The SDK's key store is an SQLite database; its -wal and -shm files come and go with the process.
    const keyFiles = async () =>
      (await compose(['exec', '-T', 'publisher', 'find', '/data', '-type', 'f']))
        .split('\n')
        .filter((f) => f !== '' && !/-(wal|shm|journal)$/.test(f))
        .sort()
    const keysBefore = await keyFiles()
    expect(keysBefore.length).toBeGreaterThan(0)
    await compose(['down'])
    await compose(['up', '-d'])
    await waitHealthy()
    for (const userId of users) expect((await api('GET', `/users/${userId}`)).status).toBe(200)
    expect(await keyFiles()).toEqual(expect.arrayContaining(keysBefore))
  })
})

function isJson(line: string): boolean {
  try {
    return typeof JSON.parse(line) === 'object'
  } catch {
    return false
  }
}
