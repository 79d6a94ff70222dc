#!/usr/bin/env node
// The `fitstream` command: one entry point for the operator commands each service ships.
// Each command runs with that service's own environment (see README, "Configuration").
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const COMMANDS = {
  streams: 'services/publisher/dist/cli.js',
  hub: 'services/publisher/dist/cli.js',
  dlq: 'services/token-service/dist/cli.js',
  tokens: 'services/token-service/dist/cli.js',
  redis: 'services/token-service/dist/cli.js',
}

const USAGE = `Usage: fitstream <command> …

  streams provision     create the Streamr streams (publisher's variables)
  hub create-project    list the streams on the Streamr Hub
  hub status            a project's streams, price and subscribers
  hub grant             give an address a subscription without payment
  dlq list|show|replay|purge
                        dead letters of every stage (REDIS_URL, QUEUE_PREFIX)
  tokens reencrypt      re-encrypt every stored token under the first key (token service's variables)
  redis copy-to-cluster --from <url>
                        copy a single Redis' keys to a Redis Cluster (REDIS_CLUSTER_NODES, QUEUE_PREFIX)

Run \`fitstream <command> --help\` for a command's options.
`

const [command, ...rest] = process.argv.slice(2)
const script = COMMANDS[command ?? '']
if (script === undefined) {
  process.stdout.write(USAGE)
  process.exit(command === undefined || command === '--help' || command === 'help' ? 0 : 64)
}
const entry = fileURLToPath(new URL(`../${script}`, import.meta.url))
const { status, error } = spawnSync(process.execPath, [entry, command, ...rest], { stdio: 'inherit' })
if (error !== undefined) {
  process.stderr.write(`fitstream: ${error.message} (run npm run build first)\n`)
  process.exit(1)
}
process.exit(status ?? 1)
