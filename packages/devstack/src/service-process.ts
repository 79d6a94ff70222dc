import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

export type ServiceName = 'token-service' | 'fetcher' | 'anonymizer' | 'publisher'

export const SERVICE_NAMES: readonly ServiceName[] = ['token-service', 'fetcher', 'anonymizer', 'publisher']

export function serviceEntry(name: ServiceName): string {
  return fileURLToPath(new URL(`../../../services/${name}/dist/main.js`, import.meta.url))
}

export interface ServiceProcessOptions {
  readonly name: ServiceName
  /** Label for logs, e.g. fetcher-2. */
  readonly label?: string
  readonly env: Readonly<Record<string, string>>
  readonly port: number
  /** Where the service's JSON log lines go (appended); kept in memory when omitted. */
  readonly logFile?: string
  /** Keep at most this many log lines in memory (default 5,000). */
  readonly keepLines?: number
  /** Extra node flags, e.g. --cpu-prof. */
  readonly nodeArgs?: readonly string[]
}

/** One FitStream service running as its own process, as it does in production. */
export class ServiceProcess {
  readonly label: string
  readonly lines: string[] = []
  private child: ChildProcess | undefined
  private exited: Promise<number | null> | undefined
  private logStream: WriteStream | undefined

  constructor(readonly options: ServiceProcessOptions) {
    this.label = options.label ?? options.name
  }

  get url(): string {
    return `http://127.0.0.1:${this.options.port}`
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  /** The process was started and has not exited. */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  /** Starts the process; after a kill() or stop(), starts it again on the same port and environment. */
  start(): void {
    this.logStream?.end()
    const child = spawn(process.execPath, [...(this.options.nodeArgs ?? []), serviceEntry(this.options.name)], {
      env: { PATH: process.env.PATH ?? '', ...this.options.env, HTTP_HOST: '127.0.0.1', HTTP_PORT: String(this.options.port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.child = child
    if (this.options.logFile !== undefined) this.logStream = createWriteStream(this.options.logFile, { flags: 'a' })
    const keep = this.options.keepLines ?? 5_000
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream! }).on('line', (line) => {
        this.lines.push(line)
        if (this.lines.length > keep) this.lines.splice(0, this.lines.length - keep)
        this.logStream?.write(`${line}\n`)
      })
    }
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)))
  }

  /** Polls /readyz until it answers 200. */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let last = 'no answer'
    while (Date.now() < deadline) {
      if (this.child?.exitCode !== null && this.child?.exitCode !== undefined) {
        throw new Error(`${this.label} exited with code ${this.child.exitCode} before it was ready:\n${this.tail(20)}`)
      }
      try {
        const response = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2_000) })
        if (response.ok) return
        last = `${response.status} ${await response.text()}`
      } catch (error) {
        last = error instanceof Error ? error.message : String(error)
      }
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    throw new Error(`${this.label} not ready after ${timeoutMs} ms (${last}):\n${this.tail(20)}`)
  }

  /** SIGTERM and wait for a graceful exit; returns the exit code. */
  async stop(timeoutMs = 30_000): Promise<number | null> {
    if (this.child === undefined || this.child.exitCode !== null) return this.child?.exitCode ?? null
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), timeoutMs)
    const code = await this.exited!
    clearTimeout(timer)
    this.logStream?.end()
    return code
  }

  /** SIGKILL, as a crash would. */
  async kill(): Promise<void> {
    if (this.child === undefined || this.child.exitCode !== null) return
    this.child.kill('SIGKILL')
    await this.exited
  }

  tail(lines: number): string {
    return this.lines.slice(-lines).join('\n')
  }
}
