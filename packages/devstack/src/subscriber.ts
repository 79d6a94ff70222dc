import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

export interface ReceivedMessage {
  /** When this process got it (ms since epoch). */
  readonly receivedAt: number
  readonly streamId: string
  readonly partition: number
  readonly publisherId: string
  readonly timestamp: number
  readonly sequenceNumber: number
  readonly msgChainId: string
  readonly content: unknown
}

/** One record of a `fitstream.records/*` message, with the pseudonym and epoch it is under. */
export interface ReceivedRecord {
  readonly type: string
  readonly pseudonym: string
  readonly epoch: string
  readonly id: string
  readonly revision: number
  readonly start: string
  readonly end: string
  readonly values: Record<string, number>
  readonly unit: string
}

interface RecordsContent {
  readonly schema?: unknown
  readonly type?: string
  readonly epoch?: string
  readonly pseudonym?: string
  readonly records?: readonly (Omit<ReceivedRecord, 'type' | 'epoch' | 'pseudonym'> & { pseudonym?: string })[]
}

/**
 * The records of a message in either format: `fitstream.records/1` (one pseudonym per message, in
 * its header) and `fitstream.records/2` (a release slot's: a pseudonym per record, one epoch per
 * message). Anything else (cohorts, another format) has none.
 */
export function recordsOf(content: unknown): ReceivedRecord[] {
  const message = (content ?? {}) as RecordsContent
  if (message.schema !== 'fitstream.records/1' && message.schema !== 'fitstream.records/2') return []
  return (message.records ?? []).map((record) => ({
    ...record,
    type: message.type ?? '',
    epoch: message.epoch ?? '',
    pseudonym: record.pseudonym ?? message.pseudonym ?? '',
  }))
}

/** A subscriber process (see subscriber-main.ts) and what it has received so far. */
export class Subscriber {
  readonly messages: ReceivedMessage[] = []
  readonly errors: string[] = []
  private readonly listeners = new Set<(message: ReceivedMessage) => void>()

  private constructor(private readonly child: ChildProcess) {}

  get pid(): number | undefined {
    return this.child.pid
  }

  static async start(config: object, streams: readonly string[], env: Readonly<Record<string, string>> = {}, timeoutMs = 60_000): Promise<Subscriber> {
    const child = spawn(process.execPath, [fileURLToPath(new URL('./subscriber-main.js', import.meta.url)), JSON.stringify({ config, streams })], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    })
    const subscriber = new Subscriber(child)
    createInterface({ input: child.stderr! }).on('line', (line) => {
      subscriber.errors.push(line)
      if (subscriber.errors.length > 200) subscriber.errors.shift()
    })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`subscriber not ready after ${timeoutMs} ms:\n${subscriber.errors.slice(-10).join('\n')}`)), timeoutMs)
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`subscriber exited (${code}):\n${subscriber.errors.slice(-10).join('\n')}`))
      })
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let event: { event?: string } & Partial<ReceivedMessage>
        try {
          event = JSON.parse(line) as typeof event
        } catch {
          return
        }
        if (event.event === 'ready') {
          clearTimeout(timer)
          resolve()
        } else if (event.event === 'message') {
          const message = { ...(event as ReceivedMessage), receivedAt: Date.now() }
          subscriber.messages.push(message)
          for (const listener of subscriber.listeners) listener(message)
        }
      })
    })
    return subscriber
  }

  onMessage(listener: (message: ReceivedMessage) => void): void {
    this.listeners.add(listener)
  }

  /** Resolves once `predicate` holds for the messages received, or rejects after `timeoutMs`. */
  async waitFor(predicate: (messages: readonly ReceivedMessage[]) => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!predicate(this.messages)) {
      if (Date.now() > deadline) {
        const state = this.child.exitCode === null ? 'running' : `exited with ${this.child.exitCode}`
        throw new Error(
          `subscriber: condition not met after ${timeoutMs} ms (${this.messages.length} messages received, process ${state}):\n${this.errors.slice(-5).join('\n')}`,
        )
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  /** Kills the process outright (SIGKILL), as a crash or a lost machine looks to its neighbours. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.kill('SIGKILL')
    await exited
  }

  async stop(): Promise<void> {
    // A process that was killed has a signal and no exit code.
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
}
