import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ChildMessage, ChildRequest } from './import-child.js'
import { ImportError, type ImportErrorCode } from './errors.js'
import type { ImportOptions } from './import.js'
import type { EncryptedSpool } from './spool.js'

/** What an import in a child process reports, in order: progress, once `parsed`, then the samples in chunks. */
export type ImportEvent = Exclude<ChildMessage, { kind: 'done' } | { kind: 'failed' }>

export interface ForkOptions {
  /** Samples per chunk handed back (default 5,000). */
  readonly chunkSize?: number
  /** The child's heap ceiling in MB (default 160): past it the child dies, not the service. */
  readonly maxHeapMb?: number
}

const CHILD = fileURLToPath(new URL('./import-child.js', import.meta.url))

/** The import child's default heap ceiling in MB; the benchmark runs its import under the same one. */
export const IMPORT_CHILD_HEAP_MB = 160

/**
 * Imports a spool in a child process and yields its events. The next chunk of samples is asked for
 * only when the consumer comes back for it, so a slow hand-over holds the child, not memory. A refused
 * export throws its ImportError; a child that dies throws FST_ERR_IMPORT_FAILED.
 */
export async function* importInChild(spool: EncryptedSpool, options: Omit<ImportOptions, 'onProgress'>, fork_: ForkOptions = {}): AsyncGenerator<ImportEvent> {
  const child = fork(CHILD, [], {
    execArgv: [`--max-old-space-size=${fork_.maxHeapMb ?? IMPORT_CHILD_HEAP_MB}`],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    serialization: 'advanced',
  })
  const queue: ChildMessage[] = []
  let wake: (() => void) | undefined
  let exited: number | null | undefined
  child.on('message', (message: ChildMessage) => {
    queue.push(message)
    wake?.()
  })
  // 'close', not 'exit': it comes after the last message on the IPC channel has been read.
  child.on('close', (code) => {
    exited = code
    wake?.()
  })
  child.on('error', () => {
    exited = -1
    wake?.()
  })
  const request: ChildRequest = { spool: spool.handle(), options, chunkSize: fork_.chunkSize ?? 5_000 }
  child.send(request)
  try {
    for (;;) {
      const message = queue.shift()
      if (message === undefined) {
        if (exited !== undefined) throw new ImportError('FST_ERR_IMPORT_FAILED', 'the import stopped on our side; nothing of it was released. Try again later.')
        await new Promise<void>((resolve) => (wake = resolve))
        wake = undefined
        continue
      }
      if (message.kind === 'done') return
      if (message.kind === 'failed') throw new ImportError(message.code as ImportErrorCode, message.message)
      yield message
      if (message.kind === 'samples' && child.connected) child.send({ ack: true })
    }
  } finally {
    if (exited === undefined) child.kill()
  }
}
