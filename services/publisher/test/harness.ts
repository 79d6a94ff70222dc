import { streamrEnv } from '@fitstream/devstack'
import { execFile } from 'node:child_process'
import type { Redis } from 'ioredis'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { ServiceProcess, Subscriber } from '@fitstream/devstack'
import { DeliveryJournal } from '../src/delivery-journal.js'
import type { CohortRecord, DataTypeKey, ReleasableRecord } from '@fitstream/shared'
import { buyOnLocalHub, freePort, startLocalStreamrNetwork, type LocalStreamrNetwork } from '@fitstream/streamr-local'

/**
 * A local Streamr network with FitStream's publisher and CLI as separate processes (the SDK takes
 * over process-wide handlers, so no client runs inside a test process), for the publisher's tests.
 */
const run = promisify(execFile)
export const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

/** A publisher that runs no WebSocket server (as behind NAT); empty is unset, overriding the harness's port and host. */
export const WITHOUT_SERVER: Readonly<Record<string, string>> = { STREAMR_WEBSOCKET_SERVER: 'false', STREAMR_WEBSOCKET_PORT: '', STREAMR_WEBSOCKET_HOST: '' }

/** How long a stopping harness's publishers have to drain before they are killed. */
const PUBLISHER_GRACE_WITHOUT_BUYERS_MS = 3_000

export class PublisherHarness {
  private readonly dirs: string[] = []
  private readonly processes: (ServiceProcess | Subscriber)[] = []

  private constructor(readonly network: LocalStreamrNetwork) {}

  static async start(options: { hub?: boolean } = {}): Promise<PublisherHarness> {
    return new PublisherHarness(await startLocalStreamrNetwork({ hub: options.hub === true }))
  }

  /** The seller: owns the streams and publishes. */
  get seller(): { address: string; privateKey: string } {
    return this.network.accounts[1]!
  }

  get buyer(): { address: string; privateKey: string } {
    return this.network.accounts[2]!
  }

  streamId(type: DataTypeKey, cohort = false): string {
    return `${this.seller.address.toLowerCase()}/fitness/${type}${cohort ? '/cohort' : ''}`
  }

  /** A buyer's purchase of `seconds` of a project on the local Hub (approve, then MarketplaceV4.buy); the network must have the Hub (`hub: true`). */
  async buyOnHub(buyerPrivateKey: string, projectId: string, seconds: number): Promise<void> {
    await buyOnLocalHub({ rpcUrl: this.network.rpcUrl, chainId: this.network.chainId, hub: this.network.hub!, buyerPrivateKey, projectId, seconds })
  }

  /** A new, empty key store: the SDK keeps encryption keys there. */
  dataDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'fitstream-publisher-test-'))
    this.dirs.push(dir)
    return dir
  }

  /** The publisher's variables for this network (what .env holds in production). */
  env(extra: Record<string, string> = {}): Record<string, string> {
    const { hub } = this.network
    return {
      ...streamrEnv(this.network, this.seller.privateKey),
      STREAMR_PERMISSION_CACHE_MS: '1000',
      // Each job published as it comes, with its own journal (what these tests check); a test of the
      // release slots sets PUBLISH_SLOT_MS.
      PUBLISH_SLOT_MS: '0',
      ...(hub === undefined ? {} : { HUB_PROJECT_REGISTRY_ADDRESS: hub.projectRegistryAddress, HUB_MARKETPLACE_ADDRESS: hub.marketplaceAddress }),
      LOG_LEVEL: 'info',
      ...extra,
    }
  }

  /** Runs `fitstream …` and returns its stdout; rejects with its stderr. */
  async cli(args: readonly string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
    const childEnv = { PATH: process.env.PATH ?? '', XDG_DATA_HOME: this.dataDir(), STREAMR_WEBSOCKET_PORT: String(await freePort()), ...this.env(env) }
    return run(process.execPath, [CLI, ...args], { env: childEnv, timeout: 120_000 })
  }

  /** Starts a publisher service process (with a key store of its own unless `env` names one) and waits until it is ready. */
  async startPublisher(env: Record<string, string>, label = 'publisher'): Promise<ServiceProcess> {
    const publisher = new ServiceProcess({
      name: 'publisher',
      label,
      port: await freePort(),
      env: this.env({ STREAMR_WEBSOCKET_PORT: String(await freePort()), XDG_DATA_HOME: env.XDG_DATA_HOME ?? this.dataDir(), ...env }),
    })
    publisher.start()
    this.processes.push(publisher)
    await publisher.waitReady()
    return publisher
  }

  async startSubscriber(privateKey: string, streams: readonly string[]): Promise<Subscriber> {
    const config = await this.network.clientConfig({ privateKey })
    const subscriber = await Subscriber.start(config, streams, { XDG_DATA_HOME: this.dataDir() })
    this.processes.push(subscriber)
    return subscriber
  }

  async stop(): Promise<void> {
    // Buyers first: once they are gone, a publisher's shutdown flush (STREAMR_SHUTDOWN_FLUSH_MS,
    // holding its last messages for them) has nobody to deliver to, so it gets a short grace.
    await Promise.all(this.processes.filter((p) => p instanceof Subscriber).map((p) => p.stop().catch(() => undefined)))
    await Promise.all(this.processes.filter((p) => p instanceof ServiceProcess).map((p) => p.stop(PUBLISHER_GRACE_WITHOUT_BUYERS_MS).catch(() => undefined)))
    await this.network.stop()
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true })
  }
}

const hex = (bytes: number): string => randomBytes(bytes).toString('hex')
const HOUR = 3_600_000
const T0 = Date.UTC(2026, 10, 1)

/** `count` hourly records of one pseudonym, as the anonymiser releases them. */
export function records(type: DataTypeKey, count: number, pseudonym = hex(16)): ReleasableRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    id: hex(16),
    type,
    pseudonym,
    epoch: '2026-11',
    start: new Date(T0 + i * HOUR).toISOString(),
    end: new Date(T0 + (i + 1) * HOUR).toISOString(),
    values: { count: 100 + i },
    unit: 'steps',
    revision: 0,
  }))
}

export function cohorts(type: DataTypeKey, count: number): CohortRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    id: hex(16),
    type,
    start: new Date(T0 + i * HOUR).toISOString(),
    end: new Date(T0 + (i + 1) * HOUR).toISOString(),
    contributors: 12,
    values: { count: 1000 + i },
    unit: 'steps',
  }))
}

interface ReceivedContent {
  readonly schema: string
  readonly records?: readonly { id: string; revision?: number }[]
}

/** How many times each record (id and revision; `c:` id for cohorts) reached the subscriber. */
export function deliveries(subscriber: Subscriber): Map<string, number> {
  const counts = new Map<string, number>()
  for (const message of subscriber.messages) {
    const content = message.content as ReceivedContent
    for (const r of content.records ?? []) {
      const key = content.schema.startsWith('fitstream.cohorts') ? `c:${r.id}` : `${r.id}:${r.revision ?? 0}`
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
  }
  return counts
}

export function keysOf(job: { records: readonly ReleasableRecord[]; cohorts?: readonly CohortRecord[] }): string[] {
  return [...job.records.map((r) => `${r.id}:${r.revision}`), ...(job.cohorts ?? []).map((c) => `c:${c.id}`)]
}

/**
 * Waits until the publisher has published every message of a job. Publish jobs leave Redis when
 * they complete (they hold personal data), so the publisher's own "done" note is what is checked.
 */
export async function waitUntilPublished(redis: Redis, prefix: string, jobId: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  const journal = new DeliveryJournal(redis, prefix)
  while (!(await journal.isDone(jobId))) {
    if (Date.now() > deadline) throw new Error(`job ${jobId} not published after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
