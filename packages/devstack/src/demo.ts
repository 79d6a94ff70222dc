import { parseArgs } from 'node:util'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { GOOGLE_DATA_APIS, createRedis, deleteKeysWithPrefix, waitForRedis, type GoogleDataApi } from '@fitstream/shared'
import { BULL_BOARD_PATH } from './paths.js'
import { RedisServer } from './redis-server.js'
import { Stack } from './stack.js'
import { recordsOf, type ReceivedMessage } from './subscriber.js'

/**
 * `npm run demo`: FitStream end to end on this machine with no credentials. Synthetic Google users
 * are registered, their data flows through the four services, and a buyer's subscriber prints the
 * messages it receives from the local Streamr network (the devstack's policy opts everyone in to
 * individual records, so they show).
 */
const { values } = parseArgs({
  options: {
    users: { type: 'string', default: process.env.DEMO_USERS ?? '3' },
    seconds: { type: 'string', default: process.env.DEMO_SECONDS ?? '0' },
    port: { type: 'string', default: process.env.DEMO_PORT ?? '8080' },
    'google-api': { type: 'string', default: process.env.DEMO_GOOGLE_API ?? 'health' },
  },
})
const googleApi = values['google-api']
if (!isGoogleDataApi(googleApi)) {
  process.stderr.write(`--google-api must be one of ${GOOGLE_DATA_APIS.join(', ')}, not ${JSON.stringify(googleApi)}\n`)
  process.exit(2)
}
const users = Number(values.users)
const seconds = Number(values.seconds)
const prefix = 'fitstream-demo'
const say = (message: string): void => void process.stdout.write(`${message}\n`)
const { redisUrl, privateRedis } = await demoRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')

const logDir = join(fileURLToPath(new URL('../../../', import.meta.url)), '.fitstream', 'demo-logs')
const started = Date.now()
const stack = await Stack.start({ redisUrl, prefix, logDir, googleApi, tokenServicePort: Number(values.port), log: (m) => say(`• ${m}`) })
let stopping = false
const stop = async (): Promise<void> => {
  if (stopping) return
  stopping = true
  say('\nstopping…')
  await stack.stop()
  await privateRedis?.close()
  process.exit(0)
}
process.on('SIGINT', () => void stop())
process.on('SIGTERM', () => void stop())

say(`• services running; logs in ${logDir}`)
const subscriber = await stack.startSubscriber()
say(`• a buyer (${stack.buyer.address}) subscribed to ${stack.streams.length} streams`)
subscriber.onMessage((message) => say(describe(message)))

for (let i = 0; i < users; i++) {
  const user = await stack.registerUser({ seed: `demo-user-${i + 1}` })
  say(`• registered demo user ${i + 1} (${user.dataTypes.join(', ')}), read from ${googleApi === 'health' ? 'the Google Health API' : 'Google Fit'}`)
}
say('')
say(`Onboarding:  ${stack.tokenService.url}/   (connect a synthetic "Google" account in your browser; the fake's consent screen stands in for Google's)`)
say(`Bull Board:  ${stack.tokenService.url}${BULL_BOARD_PATH}   (any user name; password: ${stack.secrets.ADMIN_TOKEN})`)
say(`API docs:    ${stack.tokenService.url}/docs`)
say(`Users API:   curl -H 'authorization: Bearer ${stack.secrets.ADMIN_TOKEN}' ${stack.tokenService.url}/users/<id>`)
say('Messages as a buyer receives them (Ctrl+C to stop):\n')

await subscriber
  .waitFor((m) => m.length > 0, 60_000)
  .then(
    () => say(`• first message after ${((Date.now() - started) / 1000).toFixed(1)} s`),
    (error: unknown) => say(`• ${error instanceof Error ? error.message : String(error)}: see ${logDir}`),
  )
if (seconds > 0) {
  setTimeout(() => {
    say(`• ${subscriber.messages.length} messages received in ${seconds} s`)
    void stop()
  }, seconds * 1000)
}

function describe(message: ReceivedMessage): string {
  // A release slot's message (fitstream.records/2) holds many people's records, a pseudonym on each.
  const records = recordsOf(message.content)
  const type = (message.content as { type?: string }).type
  if (records.length === 0) return `[${type}] partition ${message.partition}: no individual records`
  const first = records.reduce((a, b) => (b.start < a.start ? b : a))
  const last = records.reduce((a, b) => (b.start > a.start ? b : a))
  const pseudonyms = [...new Set(records.map((r) => r.pseudonym))]
  const who = pseudonyms.length > 1 ? `${pseudonyms.length} pseudonyms` : `${pseudonyms[0]!.slice(0, 12)}…`
  const slot = new Date(message.timestamp).toISOString().slice(11, 23)
  return `[${type}] ${records[0]!.epoch} ${who} slot ${slot}Z partition ${message.partition}: ${records.length} records, first ${first.start.slice(0, 16)}Z ${format(first.values)} ${first.unit} … last ${last.start.slice(0, 16)}Z`
}

function format(values: Record<string, number>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')
}

function isGoogleDataApi(value: string | undefined): value is GoogleDataApi {
  return (GOOGLE_DATA_APIS as readonly (string | undefined)[]).includes(value)
}

/**
 * The Redis the demo uses: the one at REDIS_URL, emptied of a previous demo's leftovers, or, when
 * nothing answers there, a private redis-server (from the PATH) that lives as long as the demo.
 */
async function demoRedis(url: string): Promise<{ redisUrl: string; privateRedis: RedisServer | undefined }> {
  const redis = createRedis(url, 'producer', 'demo')
  try {
    await waitForRedis(redis, 3_000)
    await deleteKeysWithPrefix(redis, prefix)
    return { redisUrl: url, privateRedis: undefined }
  } catch {
    say(`• Redis does not answer at ${url}: starting a private redis-server for the demo`)
  } finally {
    redis.disconnect()
  }
  try {
    const server = await RedisServer.start()
    return { redisUrl: server.url, privateRedis: server }
  } catch (error) {
    say(`${error instanceof Error ? error.message : String(error)}`)
    say('Install Redis (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) or set REDIS_URL.')
    process.exit(1)
  }
}
