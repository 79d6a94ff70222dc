/**
 * An import in its own process (forked by the token service): the parse's CPU and memory stay out of
 * the service that answers people, and a crash or a leak ends with the child. The parent sends the
 * spool's handle over IPC; the child answers with progress, then the samples in chunks (waiting for
 * an acknowledgement after each, so they never pile up), then a summary, or an error's code.
 */
import type { FitnessSample } from '@fitstream/shared'
import type { TypeSummary } from './buckets.js'
import { ImportError } from './errors.js'
import { importArchive, type ExportFormat, type ImportOptions } from './import.js'
import { EncryptedSpool, type SpoolHandle } from './spool.js'

export interface ChildRequest {
  readonly spool: SpoolHandle
  readonly options: Omit<ImportOptions, 'onProgress'>
  readonly chunkSize: number
}

export type ChildMessage =
  | { readonly kind: 'progress'; readonly fraction: number; readonly records: number }
  | {
      readonly kind: 'parsed'
      readonly format: ExportFormat
      readonly records: number
      readonly buckets: number
      readonly summary: Partial<Record<string, TypeSummary>>
    }
  | { readonly kind: 'samples'; readonly samples: FitnessSample[] }
  | { readonly kind: 'done' }
  | { readonly kind: 'failed'; readonly code: string; readonly message: string }

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve, reject) => process.send!(message, (error: Error | null) => (error === null ? resolve() : reject(error))))
}

function nextAck(): Promise<void> {
  return new Promise((resolve) => process.once('message', () => resolve()))
}

async function run(request: ChildRequest): Promise<void> {
  const spool = EncryptedSpool.adopt(request.spool)
  let lastProgress = 0
  const result = await importArchive(spool, {
    ...request.options,
    onProgress: ({ fraction, records }) => {
      if (Date.now() - lastProgress < 250 && fraction < 1) return
      lastProgress = Date.now()
      void send({ kind: 'progress', fraction, records })
    },
  })
  await send({ kind: 'parsed', format: result.format, records: result.records, buckets: result.buckets, summary: result.summary })
  let chunk: FitnessSample[] = []
  for (const sample of result.samples()) {
    chunk.push(sample)
    if (chunk.length >= request.chunkSize) {
      const ack = nextAck()
      await send({ kind: 'samples', samples: chunk })
      chunk = []
      await ack
    }
  }
  if (chunk.length > 0) {
    const ack = nextAck()
    await send({ kind: 'samples', samples: chunk })
    await ack
  }
  await send({ kind: 'done' })
}

process.once('message', (request: ChildRequest) => {
  run(request)
    .catch(async (error: unknown) => {
      const known = error instanceof ImportError
      await send({
        kind: 'failed',
        code: known ? error.code : 'FST_ERR_IMPORT_FAILED',
        message: known ? error.message : 'the import failed on our side; nothing of it was released. Try again later.',
      }).catch(() => undefined)
    })
    .finally(() => process.disconnect())
})
