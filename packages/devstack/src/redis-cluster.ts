import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from '@fitstream/streamr-local'

const run = promisify(execFile)

/** True when redis-server can be run from the PATH (a local cluster needs it and redis-cli). */
export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version']).status === 0
}

/**
 * A Redis Cluster of its own on loopback: `masters` cluster-enabled redis-servers (no replicas, no
 * persistence) on free ports, their cluster bus ports too, in a temporary directory, joined with
 * `redis-cli --cluster create`. For tests of FitStream on a cluster (REDIS_CLUSTER_NODES).
 */
export class LocalRedisCluster {
  private constructor(
    readonly dir: string,
    readonly ports: readonly number[],
  ) {}

  /** Starts the servers, creates the cluster and waits until every node reports `cluster_state:ok`. */
  static async start(masters = 3): Promise<LocalRedisCluster> {
    const cluster = new LocalRedisCluster(mkdtempSync(join(tmpdir(), 'fitstream-cluster-')), [])
    const ports: number[] = []
    try {
      for (let i = 0; i < masters; i++) {
        const [port, busPort] = [await freePort(), await freePort()]
        await run('redis-server', [
          ...['--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1'],
          ...['--cluster-enabled', 'yes', '--cluster-config-file', join(cluster.dir, `nodes-${port}.conf`), '--dir', cluster.dir],
          ...['--save', '', '--appendonly', 'no', '--daemonize', 'yes'],
          ...['--pidfile', join(cluster.dir, `${port}.pid`), '--logfile', join(cluster.dir, `${port}.log`)],
        ])
        ports.push(port)
      }
      const started = new LocalRedisCluster(cluster.dir, ports)
      for (const port of ports) await waitFor(async () => (await started.cli(port, 'ping').catch(() => '')).trim() === 'PONG', 'a node answering')
      await run('redis-cli', ['--cluster', 'create', ...started.nodes, '--cluster-replicas', '0', '--cluster-yes'])
      for (const port of ports) await waitFor(async () => (await started.cli(port, 'cluster', 'info')).includes('cluster_state:ok'), 'cluster_state:ok')
      return started
    } catch (error) {
      await new LocalRedisCluster(cluster.dir, ports).stop()
      throw error
    }
  }

  /** The nodes as REDIS_CLUSTER_NODES lists them (`127.0.0.1:<port>`). */
  get nodes(): string[] {
    return this.ports.map((port) => `127.0.0.1:${port}`)
  }

  /** A URL of one node, for REDIS_URL beside REDIS_CLUSTER_NODES. */
  get url(): string {
    return `redis://127.0.0.1:${this.ports[0]}`
  }

  /** Stops every node without saving and deletes the directory. */
  async stop(): Promise<void> {
    for (const port of this.ports) await this.cli(port, 'shutdown', 'nosave').catch(() => '')
    rmSync(this.dir, { recursive: true, force: true })
  }

  private async cli(port: number, ...args: string[]): Promise<string> {
    return (await run('redis-cli', ['-p', String(port), ...args])).stdout
  }
}

async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let waited = 0; waited < 30_000; waited += 100) {
    if (await condition()) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`the local Redis Cluster never reached ${what}`)
}
