#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { StreamPermission, type StreamrClient } from '@streamr/sdk'
import { Wallet } from 'ethers'
import { dataTypeKeySchema, loadConfigOrExit, type DataTypeKey } from '@fitstream/shared'
import { loadConfig, type PublisherConfig } from './config.js'
import { Hub, hubEnvironment, hubProjectUrl } from './hub.js'
import { DEFAULT_TYPES, listingMetadata, withDataTypes } from './listing.js'
import { provisionStreams } from './provision.js'
import { createStreamrClient, detachStreamrSignalHandlers } from './streamr-client.js'
import { cohortStreamIdFor, streamIdFor } from './streams.js'
import { createDataUnionCommand, dataUnionStatusCommand } from './data-union-cli.js'
import { loadDataUnionConfig } from './data-union-config.js'

const USAGE = `Usage: fitstream <command> [options]

Sets up what FitStream sells: its Streamr streams and its product on the Streamr Hub. Reads the
publisher's variables (STREAMR_PRIVATE_KEY, STREAMR_ENVIRONMENT, ...; see README, "Configuration").

Commands:
  streams provision     create the stream of every data type and its cohort stream if missing
                        (description, partitions, storage), grant PUBLISH to extra publisher keys;
                        SUBSCRIBE stays non-public. Idempotent: a second run changes nothing.
  hub create-project    list the streams as a Hub project (ProjectRegistryV1); prints its id
  hub add-streams       list the streams of more data types in an existing project (e.g. workouts),
                        keeping its price; buyers whose subscription is running get them until it ends
  hub sync-access       make every buyer's SUBSCRIBE on the project's streams end when their
                        subscription does (cuts off those whose subscription is over); run it daily
  hub status            a project's streams, price and subscribers
  hub grant             give an address a subscription without payment (trials, partners)
  du create             deploy the product's Data Union (through the chain's DataUnionFactory), which
                        shares each sale among the people whose data is sold; prints its address
  du status             a Data Union's members, revenue, fees and unpaid earnings

Options (streams provision):
  --types a,b,c          data types (default: every non-location type)
  --no-cohorts           skip the <type>/cohort streams
  --partitions N         partitions of new streams (default STREAMR_PARTITIONS, 1)
  --grant-publish ADDR   give PUBLISH to another publisher key (repeatable)
  --grant-subscribe ADDR give SUBSCRIBE directly, outside the Hub (repeatable)

Options (hub create-project):
  --name TEXT                 product name (required)
  --description TEXT          what buyers get (default: a description of the data types)
  --price-per-second AMOUNT   in whole payment-token units, e.g. 0.000001 (required)
  --token ADDR                payment ERC-20 (default: the environment's DATA token)
  --beneficiary ADDR          who is paid (default: the publisher key's address)
  --min-subscription SECONDS  shortest subscription sold (default 86400)
  --types a,b,c               data types listed (default: as provisioned); --no-cohorts as above
  --policy FILE               JSON anonymisation policy summary to publish with the listing
  --project-id 0x…            bytes32 id (default: derived from the seller and the name)

Options (du create / du status):
  --admin-fee FRACTION   the operator's share of each sale (default DATA_UNION_ADMIN_FEE, 0.1)
  --token ADDR           the token it is paid in (default: the factory's, the environment's DATA)
  --name TEXT            product name kept in its metadata
  --data-union ADDR      (status) the Data Union (default DATA_UNION_ADDRESS)

Options (hub add-streams):
  --types a,b,c          the data types to add (required); --no-cohorts as above
  --project-id, --name, --from-block, --block-range as for hub status

Options (hub status / hub grant / hub sync-access):
  --project-id 0x…       the project (or --name to derive it as create-project does)
  --from-block N         where to start looking for subscribers (default 0; on Polygon use the
                         block create-project printed)
  --block-range N        blocks per log query (default 10000)
  --subscriber ADDR      (grant) who gets access
  --seconds N            (grant) how long (default 86400)

  --json                 machine-readable output
  --help                 show this text
`

const OPTIONS = {
  types: { type: 'string' },
  'no-cohorts': { type: 'boolean' },
  partitions: { type: 'string' },
  'grant-publish': { type: 'string', multiple: true },
  'grant-subscribe': { type: 'string', multiple: true },
  name: { type: 'string' },
  description: { type: 'string' },
  'price-per-second': { type: 'string' },
  token: { type: 'string' },
  beneficiary: { type: 'string' },
  'min-subscription': { type: 'string' },
  policy: { type: 'string' },
  'project-id': { type: 'string' },
  'from-block': { type: 'string' },
  'block-range': { type: 'string' },
  subscriber: { type: 'string' },
  seconds: { type: 'string' },
  'admin-fee': { type: 'string' },
  'data-union': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean' },
} as const

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values']

class UsageError extends Error {}

const say = (line: string): void => void process.stderr.write(`${line}\n`)
const print = (line: string): void => void process.stdout.write(`${line}\n`)

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: OPTIONS })
  const command = positionals.join(' ')
  if (values.help === true || command === '' || command === 'help') {
    process.stdout.write(USAGE)
    return values.help === true || command === 'help' ? 0 : 64
  }
  const commands: Record<string, (config: PublisherConfig, values: Values) => Promise<void>> = {
    'streams provision': provision,
    'hub create-project': createProject,
    'hub add-streams': addStreams,
    'hub sync-access': syncAccess,
    'hub status': status,
    'hub grant': grant,
    'du create': (_config, v) =>
      createDataUnionCommand(
        loadConfigOrExit('fitstream', loadDataUnionConfig),
        { json: v.json, token: v.token, adminFee: v['admin-fee'], name: v.name },
        print,
      ),
    'du status': (_config, v) =>
      dataUnionStatusCommand(loadConfigOrExit('fitstream', loadDataUnionConfig), { json: v.json, dataUnion: v['data-union'] }, print),
  }
  const run = commands[command]
  if (run === undefined) throw new UsageError(`unknown command "${command}"`)
  detachStreamrSignalHandlers()
  const config = loadConfigOrExit('fitstream', loadConfig)
  await run(config, values)
  return 0
}

async function provision(config: PublisherConfig, values: Values): Promise<void> {
  const partitions = integer(values.partitions, '--partitions', config.STREAMR_PARTITIONS, 1, 99)
  const client = createStreamrClient(config)
  try {
    const owner = (config.STREAMR_STREAM_OWNER ?? (await client.getUserId())).toLowerCase()
    const report = await provisionStreams(client, {
      naming: { owner, pathPrefix: config.STREAMR_STREAM_PATH_PREFIX },
      types: types(values),
      cohorts: values['no-cohorts'] !== true,
      partitions,
      storage: config.STREAMR_STORAGE_NODE === undefined ? undefined : { node: config.STREAMR_STORAGE_NODE, days: config.STREAMR_STORAGE_DAYS },
      publishers: values['grant-publish'] ?? [],
      subscribers: values['grant-subscribe'] ?? [],
      onProgress: say,
    })
    for (const stream of report.streams) if (stream.warning !== undefined) say(`warning: ${stream.warning}`)
    const created = report.streams.filter((s) => s.created).length
    say(
      report.unchanged
        ? `${report.streams.length} streams already provisioned: nothing changed`
        : `${report.streams.length} streams provisioned: ${created} created, ${report.streams.filter((s) => !s.created && s.changes.length > 0).length} updated`,
    )
    // The last stdout line is the JSON report, for scripts (the devstack reads it).
    print(JSON.stringify(report))
  } finally {
    await client.destroy()
  }
}

async function createProject(config: PublisherConfig, values: Values): Promise<void> {
  const name = required(values.name, '--name')
  const pricePerSecond = required(values['price-per-second'], '--price-per-second')
  const env = hubEnvironment(config)
  const seller = new Wallet(privateKey(config)).address
  const listed = types(values)
  const streams = streamsOf(config, seller, listed, values)
  const paymentToken = values.token ?? env.dataTokenAddress
  if (paymentToken === undefined) throw new UsageError(`no DATA token is known for ${config.STREAMR_ENVIRONMENT}: pass --token`)
  const policy = values.policy === undefined ? undefined : (JSON.parse(readFileSync(values.policy, 'utf8')) as Record<string, unknown>)

  const client = createStreamrClient(config)
  try {
    await checkListable(client, seller, streams)
  } finally {
    await client.destroy()
  }

  const hub = new Hub(env, config.STREAMR_PRIVATE_KEY)
  try {
    const result = await hub.createProject(seller, {
      projectId: values['project-id'],
      name,
      description:
        values.description ??
        `Fitness data from FitStream: ${listed.join(', ')}. Noisy averages over many people (differential privacy), and hourly records under a monthly pseudonym from the people who opted in.`,
      streams,
      paymentToken,
      pricePerSecond,
      beneficiary: values.beneficiary ?? seller,
      minimumSubscriptionSeconds: integer(values['min-subscription'], '--min-subscription', 86_400, 0, 2 ** 32 - 1),
      metadata: listingMetadata(listed, policy),
    })
    const hubUrl = hubProjectUrl(config.STREAMR_ENVIRONMENT, result.projectId)
    if (values.json === true) print(JSON.stringify({ ...result, streams, ...(hubUrl === undefined ? {} : { hubUrl }) }))
    else {
      if (result.created)
        print(`project ${result.projectId} created with ${streams.length} streams (transaction ${result.transactionHash}, block ${result.blockNumber})`)
      else print(`project ${result.projectId} already exists: nothing changed`)
      // The Hub app lists no projects any more: buyers need this address (docs/buyers.md says how to buy).
      if (hubUrl !== undefined)
        print(`buyers find it at ${hubUrl}${config.STREAMR_ENVIRONMENT === 'polygonAmoy' ? " (with Polygon Amoy chosen as the Hub's network)" : ''}`)
    }
  } finally {
    hub.destroy()
  }
}

async function addStreams(config: PublisherConfig, values: Values): Promise<void> {
  if (values.types === undefined) throw new UsageError('--types is required')
  const seller = new Wallet(privateKey(config)).address
  const added = types(values)
  const streams = streamsOf(config, seller, added, values)
  const id = projectId(config, values)
  const client = createStreamrClient(config)
  try {
    await checkListable(client, seller, streams)
  } finally {
    await client.destroy()
  }
  const hub = new Hub(hubEnvironment(config), config.STREAMR_PRIVATE_KEY)
  try {
    const result = await hub.addStreams(id, streams, (current) => withDataTypes(current, added))
    // Checked on every run, not only when streams were added: a run cut off after listing them
    // still gives them to the buyers when it is run again.
    const access = await hub.alignSubscriptions(id, streams, logRange(values))
    for (const streamId of access.missing) say(`warning: ${streamId} is listed but no longer exists`)
    const buyers = new Set(Object.values(access.granted).flat())
    if (values.json === true) print(JSON.stringify({ ...result, access }))
    else if (result.added.length === 0 && access.transactionHashes.length === 0)
      print(`project ${id} already lists these streams and its buyers hold them: nothing changed`)
    else
      print(
        `project ${id}: ${result.added.length} streams added${result.transactionHash === undefined ? '' : ` (transaction ${result.transactionHash})`}; ` +
          `${buyers.size} running subscription(s) hold them until they end`,
      )
  } finally {
    hub.destroy()
  }
}

async function syncAccess(config: PublisherConfig, values: Values): Promise<void> {
  const hub = new Hub(hubEnvironment(config), config.STREAMR_PRIVATE_KEY)
  try {
    const id = projectId(config, values)
    const result = await hub.alignSubscriptions(id, await hub.listedStreams(id), logRange(values))
    for (const streamId of result.missing) say(`warning: ${streamId} is listed but no longer exists`)
    const count = (byStream: Record<string, string[]>) => new Set(Object.values(byStream).flat()).size
    if (values.json === true) print(JSON.stringify({ projectId: id, ...result }))
    else if (result.transactionHashes.length === 0) print(`every buyer of project ${id} holds its streams until their subscription ends: nothing changed`)
    else print(`project ${id}: ${count(result.granted)} running subscription(s) now end with it on the streams, ${count(result.ended)} ended ones cut off`)
  } finally {
    hub.destroy()
  }
}

async function status(config: PublisherConfig, values: Values): Promise<void> {
  const hub = new Hub(hubEnvironment(config), config.STREAMR_PRIVATE_KEY)
  try {
    const report = await hub.status(projectId(config, values), logRange(values))
    if (values.json === true) {
      print(JSON.stringify(report))
      return
    }
    print(`project ${report.projectId}: ${String(report.metadata.name ?? '(no name)')}`)
    for (const p of report.payment) print(`price: ${p.pricePerSecond} ${p.symbol}/s (${p.pricePerDay} ${p.symbol}/day), paid to ${p.beneficiary}`)
    print(`minimum subscription: ${report.minimumSubscriptionSeconds} s`)
    print(`streams (${report.streams.length}):`)
    for (const stream of report.streams) print(`  ${stream}`)
    const active = report.subscribers.filter((s) => s.valid)
    print(`subscribers: ${active.length} active, ${report.subscribers.length - active.length} expired`)
    for (const s of report.subscribers) print(`  ${s.address} ${s.valid ? 'until' : 'expired'} ${s.endsAt}`)
  } finally {
    hub.destroy()
  }
}

async function grant(config: PublisherConfig, values: Values): Promise<void> {
  const subscriber = required(values.subscriber, '--subscriber')
  const hub = new Hub(hubEnvironment(config), config.STREAMR_PRIVATE_KEY)
  try {
    const id = projectId(config, values)
    const hash = await hub.grantSubscription(id, integer(values.seconds, '--seconds', 86_400, 1, 2 ** 40), subscriber)
    print(
      values.json === true
        ? JSON.stringify({ projectId: id, subscriber, transactionHash: hash })
        : `subscription granted to ${subscriber} (transaction ${hash})`,
    )
  } finally {
    hub.destroy()
  }
}

/**
 * The streams that list these types: each type's stream and, unless --no-cohorts, its cohort stream,
 * owned by STREAMR_STREAM_OWNER or else the seller.
 */
function streamsOf(config: PublisherConfig, seller: string, listed: readonly DataTypeKey[], values: Values): string[] {
  const naming = { owner: (config.STREAMR_STREAM_OWNER ?? seller).toLowerCase(), pathPrefix: config.STREAMR_STREAM_PATH_PREFIX }
  return listed.flatMap((type) => (values['no-cohorts'] === true ? [streamIdFor(naming, type)] : [streamIdFor(naming, type), cohortStreamIdFor(naming, type)]))
}

/** The registry reverts unless the seller holds GRANT on every stream it lists; this says which one is missing instead. */
async function checkListable(client: StreamrClient, seller: string, streams: readonly string[]): Promise<void> {
  for (const streamId of streams) {
    const exists = await client.getStream(streamId).then(
      () => true,
      () => false,
    )
    if (!exists) throw new Error(`${streamId} does not exist: run \`fitstream streams provision\` first`)
    if (!(await client.hasPermission({ streamId, userId: seller, permission: StreamPermission.GRANT, allowPublic: false }))) {
      throw new Error(`${seller} has no GRANT permission on ${streamId}, which listing it on the Hub needs`)
    }
  }
}

/** Where to look for a project's subscribers in the registry's logs: --from-block and --block-range. */
function logRange(values: Values): { fromBlock: number; blockRange: number } {
  return {
    fromBlock: integer(values['from-block'], '--from-block', 0, 0, Number.MAX_SAFE_INTEGER),
    blockRange: integer(values['block-range'], '--block-range', 10_000, 1, 1_000_000),
  }
}

function projectId(config: PublisherConfig, values: Values): string {
  if (values['project-id'] !== undefined) return values['project-id']
  if (values.name !== undefined) return Hub.projectIdFor(new Wallet(privateKey(config)).address, values.name)
  throw new UsageError('--project-id or --name is required')
}

function types(values: Values): DataTypeKey[] {
  if (values.types === undefined) return [...DEFAULT_TYPES]
  return values.types
    .split(',')
    .filter((t) => t.trim() !== '')
    .map((t) => {
      const parsed = dataTypeKeySchema.safeParse(t.trim())
      if (!parsed.success) throw new UsageError(`--types: unknown data type "${t.trim()}"`)
      return parsed.data
    })
}

function privateKey(config: PublisherConfig): string {
  return config.STREAMR_PRIVATE_KEY.startsWith('0x') ? config.STREAMR_PRIVATE_KEY : `0x${config.STREAMR_PRIVATE_KEY}`
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value.trim() === '') throw new UsageError(`${flag} is required`)
  return value
}

function integer(value: string | undefined, flag: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be a whole number from ${min} to ${max}`)
  return n
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error)
    const code = (error as { code?: unknown } | null)?.code
    process.stderr.write(
      `fitstream: ${typeof code === 'string' && code.startsWith('FST_ERR_') ? `${code}: ` : ''}${message}${error instanceof UsageError ? ' (see fitstream --help)' : ''}\n`,
    )
    process.exit(error instanceof UsageError ? 64 : 1)
  },
)
