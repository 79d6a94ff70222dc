import { randomBytes } from 'node:crypto'
import { readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { RedisConnection } from '@fitstream/shared'
import { DATA_TYPE_KEYS, FitStreamError, type DataTypeKey, type FitnessSample, type Logger, type StageQueues } from '@fitstream/shared'
import {
  EncryptedSpool,
  decideRelease,
  decodeLedgerEntry,
  encodeLedgerEntry,
  importInChild,
  ledgerKey,
  type ImportEvent,
  type ImportLimits,
  type LedgerEntry,
  type TypeSummary,
} from '@fitstream/exports'
import type { User, UserRepository } from './users.js'

/** Where an import is: its upload, the parse, the hand-over to the anonymiser, or its end. */
export type ImportState = 'uploading' | 'queued' | 'importing' | 'done' | 'failed' | 'interrupted'

/** Per type, what the import found and what it passed on to be sold. */
export interface ImportTypeSummary extends TypeSummary {
  /** Buckets handed to the anonymiser (new, or changed since an earlier import). */
  readonly released: number
  /** Why the rest were not: already imported with these values, covered by the Google API, or not consented. */
  readonly unchanged: number
  readonly leftToApi: number
  readonly notConsented: boolean
}

export interface ImportStatus {
  readonly id: string
  readonly userId: string
  readonly state: ImportState
  readonly uploadedBytes: number
  /** Share of the export parsed (0-1). */
  readonly progress: number
  readonly records: number
  readonly format?: string
  readonly code?: string
  readonly message?: string
  readonly types?: Partial<Record<DataTypeKey, ImportTypeSummary>>
  readonly updatedAt: number
}

/** A person's import ledger (erasure deletes it with the rest of their state). */
export const importLedgerKey = (prefix: string, userId: string): string => `${prefix}:import-ledger:${userId}`

/** Seven days: long enough to come back to the page, short enough to keep nothing. */
const STATUS_TTL_SECONDS = 7 * 86_400
/** An import that has not moved for this long was in a process that stopped. */
const STALE_MS = 2 * 60_000
/** Samples per anonymize job: well under the job schema's 100,000. */
const SAMPLES_PER_JOB = 5_000
const LEDGER_READ_BATCH = 10_000

/**
 * The imports' state in Redis, owned by the token service: each import's status (no data, no file
 * name) and each person's import ledger (a digest and revision per type and bucket passed on).
 */
export class ImportStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    private readonly now: () => number,
  ) {}

  private statusKey(id: string): string {
    return `${this.prefix}:import:${id}`
  }

  ledgerKey(userId: string): string {
    return importLedgerKey(this.prefix, userId)
  }

  /** Erasure: deletes the person's import ledger; answers how many keys. */
  async eraseLedger(userId: string): Promise<number> {
    return this.redis.del(this.ledgerKey(userId))
  }

  async update(id: string, fields: Partial<Omit<ImportStatus, 'id' | 'updatedAt'>>): Promise<void> {
    const flat: Record<string, string> = { updatedAt: String(this.now()) }
    for (const [name, value] of Object.entries(fields)) if (value !== undefined) flat[name] = typeof value === 'object' ? JSON.stringify(value) : String(value)
    await this.redis.multi().hset(this.statusKey(id), flat).expire(this.statusKey(id), STATUS_TTL_SECONDS).exec()
  }

  async get(id: string): Promise<ImportStatus | undefined> {
    const raw = await this.redis.hgetall(this.statusKey(id))
    if (raw.userId === undefined) return undefined
    const updatedAt = Number(raw.updatedAt)
    const running = raw.state === 'uploading' || raw.state === 'queued' || raw.state === 'importing'
    return {
      id,
      userId: raw.userId,
      state: running && this.now() - updatedAt > STALE_MS ? 'interrupted' : (raw.state as ImportState),
      uploadedBytes: Number(raw.uploadedBytes ?? 0),
      progress: Number(raw.progress ?? 0),
      records: Number(raw.records ?? 0),
      ...(raw.format === undefined ? {} : { format: raw.format }),
      ...(raw.code === undefined ? {} : { code: raw.code }),
      ...(raw.message === undefined ? {} : { message: raw.message }),
      ...(raw.types === undefined ? {} : { types: JSON.parse(raw.types) as Partial<Record<DataTypeKey, ImportTypeSummary>> }),
      updatedAt,
    }
  }

  async readLedger(userId: string, samples: readonly FitnessSample[]): Promise<Map<string, LedgerEntry>> {
    const ledger = new Map<string, LedgerEntry>()
    for (let i = 0; i < samples.length; i += LEDGER_READ_BATCH) {
      const keys = samples.slice(i, i + LEDGER_READ_BATCH).map(ledgerKey)
      const values = await this.redis.hmget(this.ledgerKey(userId), ...keys)
      values.forEach((value, j) => {
        const entry = value === null ? undefined : decodeLedgerEntry(value)
        if (entry !== undefined) ledger.set(keys[j]!, entry)
      })
    }
    return ledger
  }

  async writeLedger(userId: string, entries: ReadonlyMap<string, LedgerEntry>): Promise<void> {
    const list = [...entries]
    for (let i = 0; i < list.length; i += LEDGER_READ_BATCH) {
      await this.redis.hset(
        this.ledgerKey(userId),
        Object.fromEntries(list.slice(i, i + LEDGER_READ_BATCH).map(([key, entry]) => [key, encodeLedgerEntry(entry)])),
      )
    }
  }
}

export interface ImportRunnerDeps {
  readonly store: ImportStore
  readonly users: UserRepository
  readonly queues: StageQueues
  readonly logger: Logger
  readonly limits: ImportLimits
  /** Where uploads rest, encrypted, while they are imported. */
  readonly spoolDir: string
  readonly bucketMs: number
  /** How far back a new person's Google history is read: the API covers from `createdAt - backfillMs`. */
  readonly backfillMs: number
  /** Imports parsed at once by this process; the rest wait their turn. */
  readonly concurrency: number
  readonly now?: () => number
}

/**
 * Runs imports: the upload is spooled encrypted, parsed as a stream, deleted, and only then, when
 * the whole export was read, are its buckets under the person's consent handed to the anonymiser,
 * chunk by chunk. An export refused for its content hands on nothing.
 */
export class ImportRunner {
  private running = 0
  private readonly waiting: (() => void)[] = []
  private readonly active = new Set<Promise<void>>()
  private readonly people = new Set<string>()
  private readonly now: () => number

  constructor(private readonly deps: ImportRunnerDeps) {
    this.now = deps.now ?? Date.now
  }

  newImportId(): string {
    return randomBytes(16).toString('base64url')
  }

  spool(): EncryptedSpool {
    return EncryptedSpool.create(this.deps.spoolDir)
  }

  /** Imports a complete upload in the background; its status says how it goes. */
  start(importId: string, userId: string, spool: EncryptedSpool): void {
    this.people.add(userId)
    const run = this.run(importId, userId, spool).finally(() => {
      this.active.delete(run)
      this.people.delete(userId)
    })
    this.active.add(run)
  }

  /** Whether this process is importing something of the person's (one import per person at a time). */
  isImporting(userId: string): boolean {
    return this.people.has(userId)
  }

  /** Waits for the imports in flight (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.active.size > 0) await Promise.allSettled([...this.active])
  }

  /**
   * Spool files left by a process that stopped: their keys died with it, so they are unreadable, and
   * are removed once older than any import runs (another replica may share the folder).
   */
  async removeLeftovers(olderThanMs = 6 * 3_600_000): Promise<number> {
    const names = await readdir(this.deps.spoolDir).catch(() => [] as string[])
    let removed = 0
    for (const name of names.filter((n) => /^fitstream-import-[0-9a-f-]{36}\.bin$/.test(n))) {
      const path = join(this.deps.spoolDir, name)
      const modified = await stat(path).then(
        (s) => s.mtimeMs,
        () => undefined,
      )
      if (modified === undefined || this.now() - modified < olderThanMs) continue
      await rm(path, { force: true })
      removed++
    }
    return removed
  }

  private async run(importId: string, userId: string, spool: EncryptedSpool): Promise<void> {
    const { store } = this.deps
    const logger = this.deps.logger.child({ importId })
    await store.update(importId, { state: 'queued' })
    await this.acquire()
    try {
      await store.update(importId, { state: 'importing' })
      let lastWrite = 0
      let parsed: Extract<ImportEvent, { kind: 'parsed' }> | undefined
      let user: User | undefined
      const handed = new Map<DataTypeKey, { released: number; unchanged: number; leftToApi: number }>()
      let released = 0
      let jobIndex = 0
      // Chunk by chunk as the child hands them back, so that memory holds one chunk of samples, never
      // the export's. Each chunk's ledger entries are written after its job is added: if Redis fails
      // part way, uploading the export again hands on exactly what is missing.
      // Where Google's reads begin: samples from then on come from the API, not the export. An account with no
      // Google link has no such point, so everything it uploads is handed on.
      let apiFromMs = Number.POSITIVE_INFINITY
      const handOver = async (chunk: readonly FitnessSample[], person: User): Promise<void> => {
        const decision = decideRelease(chunk, await store.readLedger(userId, chunk), apiFromMs)
        for (const sample of chunk) {
          const counts = handed.get(sample.type) ?? { released: 0, unchanged: 0, leftToApi: 0 }
          if (sample.endMs > apiFromMs) counts.leftToApi++
          else if (decision.next.has(ledgerKey(sample))) counts.released++
          else counts.unchanged++
          handed.set(sample.type, counts)
        }
        if (decision.release.length === 0) return
        const samples = decision.release
        const window = { startMs: samples[0]!.startMs, endMs: Math.max(...samples.map((s) => s.endMs)) }
        await this.deps.queues.add(
          'anonymize',
          { syncId: `import-${importId}`, userId, window, samples, individualTypes: [...person.individualTypes] },
          // The import's random id, not the person: the job id names nobody.
          { jobId: `anonymize-import-${importId}-${jobIndex++}` },
        )
        await store.writeLedger(userId, decision.next)
        released += samples.length
      }
      const options = {
        dates: { notBeforeMs: Date.UTC(2000, 0, 1), notAfterMs: this.now() + 86_400_000 },
        bucketMs: this.deps.bucketMs,
        limits: this.deps.limits,
      }
      for await (const event of importInChild(spool, options, { chunkSize: SAMPLES_PER_JOB })) {
        if (event.kind === 'progress') {
          if (this.now() - lastWrite < 500) continue
          lastWrite = this.now()
          await store.update(importId, { progress: Math.round(event.fraction * 1000) / 1000, records: event.records })
        } else if (event.kind === 'parsed') {
          // The whole export was read: the raw upload goes now, before anything is handed on.
          await spool.destroy()
          parsed = event
          user = await this.deps.users.get(userId)
          if (user === undefined) throw new FitStreamError('FST_ERR_USER_GONE', 'the account was deleted during the import', { permanent: true })
          if (await this.deps.users.hasGoogleGrant(userId)) apiFromMs = user.createdAt - this.deps.backfillMs
          await store.update(importId, { progress: 1, records: event.records })
        } else {
          const consented = new Set(user!.dataTypes)
          await handOver(
            event.samples.filter((sample) => consented.has(sample.type)),
            user!,
          )
        }
      }
      if (parsed === undefined || user === undefined)
        throw new FitStreamError('FST_ERR_IMPORT_FAILED', 'the import ended without its result', { permanent: true })
      const consented = new Set(user.dataTypes)
      const result = parsed

      const types: Partial<Record<DataTypeKey, ImportTypeSummary>> = {}
      for (const key of DATA_TYPE_KEYS) {
        const found = result.summary[key] as TypeSummary | undefined
        if (found === undefined) continue
        types[key] = { ...found, ...(handed.get(key) ?? { released: 0, unchanged: 0, leftToApi: 0 }), notConsented: !consented.has(key) }
      }
      await store.update(importId, { state: 'done', progress: 1, records: result.records, format: result.format, types })
      logger.info({ format: result.format, records: result.records, buckets: result.buckets, released }, 'export imported')
    } catch (error) {
      const known = error instanceof FitStreamError
      await spool.destroy().catch(() => undefined)
      await store
        .update(importId, {
          state: 'failed',
          code: known ? error.code : 'FST_ERR_IMPORT_FAILED',
          message: known ? error.message : 'the import failed on our side; nothing of it was released. Try again later.',
        })
        .catch(() => undefined)
      if (known) logger.info({ code: error.code }, 'export refused')
      else logger.error({ err: error }, 'import failed')
    } finally {
      this.release()
    }
  }

  private async acquire(): Promise<void> {
    if (this.running < this.deps.concurrency) {
      this.running++
      return
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve))
  }

  private release(): void {
    const next = this.waiting.shift()
    if (next === undefined) this.running--
    else next()
  }
}
