#!/usr/bin/env node
// Starts a local Streamr network, prints one line of JSON describing it to stdout and keeps it up
// until SIGINT or SIGTERM. Progress goes to stderr with --verbose.
//   node packages/streamr-local/dist/cli.js [--hub] [--verbose]
import { startLocalStreamrNetwork, type LocalStreamrNetwork } from './index.js'

const verbose = process.argv.includes('--verbose')
const log = verbose ? (msg: string): void => void process.stderr.write(`[streamr-local] ${msg}\n`) : undefined

let network: LocalStreamrNetwork | undefined
let shuttingDown = false

async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (shuttingDown) {
    // A second signal means the user does not want to wait; the exit hooks still kill anvil.
    process.exit(1)
  }
  shuttingDown = true
  log?.(`${signal} received, stopping`)
  try {
    await network?.stop()
    process.exit(0)
  } catch (err) {
    process.stderr.write(`streamr-local: error while stopping: ${String(err)}\n`)
    process.exit(1)
  }
}

// Installed before start-up: a signal during start-up exits at once, and the exit hook kills
// anvil (the entry point lives in this process and dies with it).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, (s: NodeJS.Signals) => void shutdown(s))
}

try {
  network = await startLocalStreamrNetwork({ log, hub: process.argv.includes('--hub') })
} catch (err) {
  const details = err instanceof Error ? (err.stack ?? err.message) : String(err)
  process.stderr.write(`streamr-local: could not start: ${details}\n`)
  process.exit(1)
}
const { rpcUrl, chainId, streamRegistryAddress, entryPoint, accounts, hub } = network
const summary = { rpcUrl, chainId, streamRegistryAddress, entryPoint, accounts, hub }
process.stdout.write(`${JSON.stringify(summary)}\n`)
