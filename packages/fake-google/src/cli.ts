#!/usr/bin/env node
/**
 * Runs the fake as its own process (for the demo and the benchmark) and prints one JSON line with
 * the connection details, which the parent process reads to configure the services.
 */

import { parseArgs } from 'node:util'
import { FakeGoogle } from './fake-google.js'

function numberOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${value}`)
  return n
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      latency: { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      'token-ttl': { type: 'string' },
    },
    strict: true,
  })
  const port = numberOption(values.port, 'port')
  const latencyMs = numberOption(values.latency, 'latency')
  const accessTokenTtlSeconds = numberOption(values['token-ttl'], 'token-ttl')
  const fake = await FakeGoogle.start({
    ...(values.host === undefined ? {} : { host: values.host }),
    ...(port === undefined ? {} : { port }),
    ...(latencyMs === undefined ? {} : { latencyMs }),
    ...(accessTokenTtlSeconds === undefined ? {} : { accessTokenTtlSeconds }),
    ...(values['client-id'] === undefined ? {} : { clientId: values['client-id'] }),
    ...(values['client-secret'] === undefined ? {} : { clientSecret: values['client-secret'] }),
  })
  const { url, rootUrl, tokenUrl, authorizeUrl, revokeUrl, clientId, clientSecret } = fake
  process.stdout.write(`${JSON.stringify({ url, rootUrl, tokenUrl, authorizeUrl, revokeUrl, clientId, clientSecret })}\n`)

  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    fake.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main().catch((err: unknown) => {
  process.stderr.write(`fake-google: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
