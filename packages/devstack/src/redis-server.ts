import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '@fitstream/streamr-local'

/** Redis settings of docker-compose.yml: AOF on, never evict, compact hashes up to 512-byte values. */
export const COMPOSE_REDIS_ARGS: readonly string[] = ['--appendonly', 'yes', '--maxmemory-policy', 'noeviction', '--hash-max-listpack-value', '512']

/**
 * A redis-server (from the PATH) of its own: a free port on loopback and a data directory that
 * survives restarts, so a test can stop Redis, crash it, and bring it back with its AOF.
 */
export class RedisServer {
  readonly dir = mkdtempSync(join(tmpdir(), 'fitstream-redis-'))
  private child: ChildProcess | undefined

  private constructor(
    readonly port: number,
    readonly args: readonly string[],
  ) {}

  static async start(args: readonly string[] = COMPOSE_REDIS_ARGS): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), args)
    await server.start()
    return server
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /** Starts (again) on the same port and directory, and waits until Redis answers and has loaded its data. */
  async start(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', ...this.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.child = child
    let output = ''
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()))
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 30_000)
      child.once('error', (error) => {
        clearTimeout(timer)
        reject(new Error(`redis-server could not run (is it installed?): ${error.message}`))
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`redis-server exited (${code}):\n${output}`))
      })
      child.stdout!.on('data', () => {
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
  }

  /** SIGTERM: Redis writes its AOF out and exits, as `docker compose restart redis` does. */
  stop(): Promise<void> {
    return this.signal('SIGTERM')
  }

  /** SIGKILL: a crash; only what the AOF had on disk survives. */
  kill(): Promise<void> {
    return this.signal('SIGKILL')
  }

  /** Stops Redis for good and deletes its data. */
  async close(): Promise<void> {
    await this.signal('SIGKILL')
    rmSync(this.dir, { recursive: true, force: true })
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill(signal)
    await exited
  }
}
