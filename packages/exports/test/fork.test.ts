import { Readable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
// The built package: the child process runs its compiled import-child.js.
import { EncryptedSpool, ImportError, importInChild, type ImportEvent } from '@fitstream/exports'
import { APPLE_MORNING, fixtureDir, writeZip } from './fixtures.js'

const fixtures = fixtureDir()
afterAll(() => fixtures.cleanup())
const OPTIONS = { dates: { notBeforeMs: Date.UTC(2000, 0, 1), notAfterMs: Date.UTC(2026, 11, 7) } }

async function spoolOf(bytes: Buffer): Promise<EncryptedSpool> {
  const spool = EncryptedSpool.create(fixtures.dir)
  await spool.write(Readable.from([bytes]), 10 * 1024 ** 2)
  return spool
}

async function collect(events: AsyncIterable<ImportEvent>): Promise<ImportEvent[]> {
  const seen: ImportEvent[] = []
  for await (const event of events) seen.push(event)
  return seen
}

describe('an import in a child process', () => {
  it('reads the encrypted spool it is handed and passes the samples back in chunks', async () => {
    const spool = await spoolOf(writeZip([{ name: 'apple_health_export/export.xml', data: APPLE_MORNING }]))
    const events = await collect(importInChild(spool, OPTIONS, { chunkSize: 4 }))
    const parsed = events.find((e) => e.kind === 'parsed')
    expect(parsed).toMatchObject({ format: 'apple-health', records: 12, buckets: 9 })
    const chunks = events.filter((e) => e.kind === 'samples').map((e) => (e.kind === 'samples' ? e.samples.length : 0))
    expect(chunks).toEqual([4, 4, 1])
    expect(events.indexOf(parsed!)).toBeLessThan(events.findIndex((e) => e.kind === 'samples'))
    await spool.destroy()
  })

  it('passes a refusal back with its code', async () => {
    const spool = await spoolOf(Buffer.from('not a zip'))
    const error = await collect(importInChild(spool, OPTIONS)).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ImportError)
    expect((error as ImportError).code).toBe('FST_ERR_IMPORT_NOT_ZIP')
    await spool.destroy()
  })

  it('reports a child that dies as the import failing on our side', async () => {
    const spool = await spoolOf(writeZip([{ name: 'apple_health_export/export.xml', data: APPLE_MORNING }]))
    // A heap too small to start in: the child dies before it answers.
    const error = await collect(importInChild(spool, OPTIONS, { maxHeapMb: 1 })).catch((e: unknown) => e)
    expect((error as ImportError).code).toBe('FST_ERR_IMPORT_FAILED')
    await spool.destroy()
  })
})
