import { createReadStream } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import yauzl from 'yauzl'
import { ImportError } from './errors.js'
import type { ImportLimits } from './limits.js'

/** Bytes of a zip archive that can be read at any offset (the archive's directory is at its end). */
export interface ArchiveSource {
  readonly size: number
  reader(): yauzl.RandomAccessReader
  head(length: number): Promise<Buffer>
}

/** A yauzl reader whose byte ranges come from `openRange(start, end)` (end exclusive). */
export function rangeReader(openRange: (start: number, end: number) => Readable): yauzl.RandomAccessReader {
  class RangeReader extends yauzl.RandomAccessReader {
    override _readStreamForRange(start: number, end: number): Readable {
      return openRange(start, end)
    }
  }
  return new RangeReader()
}

/** A zip file on disk as an archive source (tests and the benchmark; uploads come as an EncryptedSpool). */
export async function fileSource(path: string): Promise<ArchiveSource> {
  const { size } = await stat(path)
  return {
    size,
    reader() {
      return rangeReader((start, end) => createReadStream(path, { start, end: Math.max(start, end - 1) }))
    },
    async head(length: number) {
      const handle = await open(path, 'r')
      try {
        const buffer = Buffer.alloc(Math.min(length, size))
        await handle.read(buffer, 0, buffer.length, 0)
        return buffer
      } finally {
        await handle.close()
      }
    },
  }
}

export interface ArchiveEntry {
  readonly name: string
  readonly compressedSize: number
  readonly uncompressedSize: number
  readonly entry: yauzl.Entry
}

/** An open archive whose entries are listed from its central directory and read as guarded streams. */
export interface OpenArchive {
  readonly entries: readonly ArchiveEntry[]
  /** The inflated bytes of an entry, stopped the moment a limit is passed. */
  read(entry: ArchiveEntry): AsyncIterable<Buffer>
  close(): void
}

/**
 * Opens a zip archive and lists its entries, refusing what is not a zip, a truncated one, one with
 * more entries than `maxEntries`, and any entry whose name is absolute or climbs out of the archive.
 * Entries are read lazily; every byte inflated counts against `maxInflatedBytes` in total and against
 * `maxRatio` times the entry's compressed size, checked while inflating.
 */
export async function openArchive(source: ArchiveSource, limits: ImportLimits): Promise<OpenArchive> {
  if (source.size > limits.maxUploadBytes)
    throw new ImportError('FST_ERR_IMPORT_TOO_LARGE', `the upload is larger than the ${limits.maxUploadBytes} bytes an import may be`)
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) => {
    yauzl.fromRandomAccessReader(
      source.reader(),
      source.size,
      { lazyEntries: true, decodeStrings: true, validateEntrySizes: true, autoClose: false },
      (error, zipfile) => {
        if (error !== null && error !== undefined) reject(error)
        else resolve(zipfile)
      },
    )
  }).catch(async (error: unknown) => {
    const head = await source.head(4)
    if (head.length === 4 && head.readUInt32LE(0) === 0x04034b50) {
      throw new ImportError(
        'FST_ERR_IMPORT_TRUNCATED',
        'the zip archive is cut short: its directory at the end is missing (was the upload or the download complete?)',
        { cause: error },
      )
    }
    throw new ImportError(
      'FST_ERR_IMPORT_NOT_ZIP',
      'the upload is not a zip archive: upload the export.zip from Apple Health or the .zip from Google Takeout as it is',
      { cause: error },
    )
  })
  if (zip.entryCount > limits.maxEntries) {
    zip.close()
    throw new ImportError('FST_ERR_IMPORT_ZIP_BOMB', `the archive lists ${zip.entryCount} files, more than the ${limits.maxEntries} an export may have`)
  }

  const entries: ArchiveEntry[] = []
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('entry', (entry: yauzl.Entry) => {
        const name = entry.fileName
        if (name.split('/').some((part) => part === '..') || name.startsWith('/') || /^[A-Za-z]:/.test(name)) {
          reject(new ImportError('FST_ERR_IMPORT_UNSAFE_PATH', 'the archive has a file whose path leaves the archive (".." or an absolute path)'))
          return
        }
        if (!name.endsWith('/')) entries.push({ name, compressedSize: entry.compressedSize, uncompressedSize: entry.uncompressedSize, entry })
        zip.readEntry()
      })
      zip.on('end', () => resolve())
      zip.on('error', (error: Error) => reject(error))
      zip.readEntry()
    })
  } catch (error) {
    zip.close()
    if (error instanceof ImportError) throw error
    const message = error instanceof Error ? error.message : String(error)
    if (/absolute path|invalid relative path|invalid characters/i.test(message)) {
      throw new ImportError('FST_ERR_IMPORT_UNSAFE_PATH', 'the archive has a file whose path leaves the archive (".." or an absolute path)', { cause: error })
    }
    throw new ImportError('FST_ERR_IMPORT_MALFORMED', 'the zip archive\u2019s directory is damaged', { cause: error })
  }

  let inflatedTotal = 0
  return {
    entries,
    close: () => zip.close(),
    async *read(item: ArchiveEntry): AsyncIterable<Buffer> {
      const { entry } = item
      if (entry.isEncrypted()) throw new ImportError('FST_ERR_IMPORT_MALFORMED', 'the archive is password-protected')
      if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8)
        throw new ImportError('FST_ERR_IMPORT_MALFORMED', 'the archive uses a compression FitStream does not read (only stored and deflate)')
      const allowed = limits.maxRatio * item.compressedSize + 1024 ** 2
      if (item.uncompressedSize > allowed) throw bomb(limits)
      const stream = await new Promise<Readable>((resolve, reject) => {
        zip.openReadStream(entry, (error, readable) => (error !== null && error !== undefined ? reject(error) : resolve(readable)))
      }).catch((error: unknown) => {
        throw new ImportError('FST_ERR_IMPORT_MALFORMED', 'a file in the archive can\u2019t be read', { cause: error })
      })
      let inflated = 0
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          inflated += chunk.length
          inflatedTotal += chunk.length
          if (inflated > allowed || inflatedTotal > limits.maxInflatedBytes) throw bomb(limits)
          yield chunk
        }
      } catch (error) {
        if (error instanceof ImportError) throw error
        const message = error instanceof Error ? error.message : String(error)
        if (/too many bytes/i.test(message)) throw bomb(limits)
        if (/not enough bytes|unexpected end/i.test(message))
          throw new ImportError('FST_ERR_IMPORT_TRUNCATED', 'a file in the archive is cut short', { cause: error })
        throw new ImportError('FST_ERR_IMPORT_MALFORMED', 'a file in the archive is damaged (its compressed data does not inflate)', { cause: error })
      } finally {
        stream.destroy()
      }
    },
  }
}

function bomb(limits: ImportLimits): ImportError {
  return new ImportError(
    'FST_ERR_IMPORT_ZIP_BOMB',
    `the archive inflates to more than an export can (over ${limits.maxRatio} times its compressed size, or over ${limits.maxInflatedBytes} bytes in all)`,
  )
}
