import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type yauzl from 'yauzl'
import { rangeReader } from './archive.js'
import { ImportError } from './errors.js'

/**
 * An upload on its way to the importer, kept in a temporary file encrypted with AES-256-CTR under a
 * key that exists only in this process's memory: the bytes at rest are unreadable to anyone, and
 * once the process or `destroy()` drops the key they are gone for good even if the unlink never ran.
 * CTR lets the zip reader seek (an archive's directory is at its end) without decrypting from the start.
 */
export class EncryptedSpool {
  private bytes = 0

  private constructor(
    readonly path: string,
    private readonly key: Buffer,
    private readonly iv: Buffer,
  ) {}

  /** A new empty spool file in `dir` (created with mode 0600). */
  static create(dir: string): EncryptedSpool {
    return new EncryptedSpool(join(dir, `fitstream-import-${randomUUID()}.bin`), randomBytes(32), randomBytes(16))
  }

  /** A complete spool handed over from another process (the import's child), key and all, over IPC only. */
  static adopt(handle: SpoolHandle): EncryptedSpool {
    const spool = new EncryptedSpool(handle.path, Buffer.from(handle.key, 'base64'), Buffer.from(handle.iv, 'base64'))
    spool.bytes = handle.size
    return spool
  }

  /** What a child process needs to read the spool: never written anywhere, only sent over its IPC channel. */
  handle(): SpoolHandle {
    return { path: this.path, size: this.bytes, key: this.key.toString('base64'), iv: this.iv.toString('base64') }
  }

  /** Bytes written so far. */
  get size(): number {
    return this.bytes
  }

  /**
   * Writes the upload, refusing it once it passes `maxBytes` (FST_ERR_IMPORT_TOO_LARGE) and treating
   * a body that ends early or errors as a client that went away (FST_ERR_IMPORT_ABORTED).
   */
  async write(body: Readable, maxBytes: number, onBytes?: (bytes: number) => void): Promise<void> {
    const cipher = createCipheriv('aes-256-ctr', this.key, this.iv)
    const counter = new Transform({
      transform: (chunk: Buffer, _encoding, done) => {
        this.bytes += chunk.length
        if (this.bytes > maxBytes) return done(new ImportError('FST_ERR_IMPORT_TOO_LARGE', `the upload is larger than the ${maxBytes} bytes an import may be`))
        onBytes?.(this.bytes)
        done(null, chunk)
      },
    })
    try {
      await pipeline(body, counter, cipher, createWriteStream(this.path, { mode: 0o600 }))
    } catch (error) {
      if (error instanceof ImportError) throw error
      throw new ImportError('FST_ERR_IMPORT_ABORTED', 'the upload stopped before it was complete', { cause: error })
    }
  }

  /** A reader of the plaintext at any range, for yauzl. */
  reader(): yauzl.RandomAccessReader {
    const { key, iv, path } = this
    return rangeReader((start: number, end: number): Readable => {
      if (end <= start) return Readable.from([])
      const block = Math.floor(start / 16)
      const decipher = createDecipheriv('aes-256-ctr', key, addToCounter(iv, block))
      let skip = start - block * 16
      const skipper = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          if (skip >= chunk.length) {
            skip -= chunk.length
            return done()
          }
          const out = chunk.subarray(skip)
          skip = 0
          done(null, out)
        },
      })
      const source = createReadStream(path, { start: block * 16, end: end - 1 })
      source.on('error', (error) => skipper.destroy(error))
      return source.pipe(decipher).pipe(skipper)
    })
  }

  /** The first `length` plaintext bytes (to tell a truncated zip from something that is no zip at all). */
  async head(length: number): Promise<Buffer> {
    const handle = await open(this.path, 'r')
    try {
      const buffer = Buffer.alloc(Math.min(length, this.bytes))
      await handle.read(buffer, 0, buffer.length, 0)
      return createDecipheriv('aes-256-ctr', this.key, this.iv).update(buffer)
    } finally {
      await handle.close()
    }
  }

  /** Deletes the file; the key goes with this object. */
  async destroy(): Promise<void> {
    await rm(this.path, { force: true })
  }
}

export interface SpoolHandle {
  readonly path: string
  readonly size: number
  readonly key: string
  readonly iv: string
}

/** The 128-bit big-endian counter `iv + blocks`. */
function addToCounter(iv: Buffer, blocks: number): Buffer {
  const out = Buffer.from(iv)
  let carry = blocks
  for (let i = 15; i >= 0 && carry > 0; i--) {
    const sum = out[i]! + (carry % 256)
    out[i] = sum % 256
    carry = Math.floor(carry / 256) + Math.floor(sum / 256)
  }
  return out
}
