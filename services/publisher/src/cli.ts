import { parseArgs } from 'node:util'
import { DATA_TYPE_KEYS, dataTypeKeySchema, loadConfigOrExit, type DataTypeKey } from '@fitstream/shared'
import { loadConfig } from './config.js'
import { provisionStreams } from './provision.js'
import { createStreamrClient, detachStreamrSignalHandlers } from './streamr-client.js'

const USAGE = `Usage: fitstream-publisher streams provision [options]

Creates the Streamr stream of every data type if missing and grants permissions. Idempotent.
Reads the publisher's STREAMR_* variables (see README, "Configuration").

Options:
  --types a,b,c          data types (default: all: ${DATA_TYPE_KEYS.join(',')})
  --partitions N         partitions for new streams (default 1)
  --grant-publish ADDR   give PUBLISH to another publisher key (repeatable)
  --grant-subscribe ADDR give SUBSCRIBE to an address directly (repeatable)
  --help                 show this text
`

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      types: { type: 'string' },
      partitions: { type: 'string', default: '1' },
      'grant-publish': { type: 'string', multiple: true },
      'grant-subscribe': { type: 'string', multiple: true },
      help: { type: 'boolean' },
    },
  })
  if (values.help === true || positionals.join(' ') !== 'streams provision') {
    process.stdout.write(USAGE)
    return values.help === true ? 0 : 64
  }
  const types = (values.types?.split(',') ?? DATA_TYPE_KEYS).map((t) => dataTypeKeySchema.parse(t.trim())) as DataTypeKey[]
  const partitions = Number(values.partitions)
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > 99) throw new Error('--partitions must be 1-99')

  detachStreamrSignalHandlers()
  const config = loadConfigOrExit('fitstream-publisher', loadConfig)
  const client = createStreamrClient(config)
  try {
    const owner = (config.STREAMR_STREAM_OWNER ?? (await client.getUserId())).toLowerCase()
    const report = await provisionStreams(client, {
      naming: { owner, pathPrefix: config.STREAMR_STREAM_PATH_PREFIX },
      types,
      partitions,
      publishers: values['grant-publish'] ?? [],
      subscribers: values['grant-subscribe'] ?? [],
    })
    process.stdout.write(`${JSON.stringify(report)}\n`)
    process.stderr.write(report.unchanged ? 'streams already provisioned: nothing changed\n' : 'streams provisioned\n')
    return 0
  } finally {
    await client.destroy()
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`fitstream-publisher: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  },
)
