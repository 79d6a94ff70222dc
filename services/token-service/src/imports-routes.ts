import { STATUS_CODES } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ImportError } from '@fitstream/exports'
import { adminOrOwner } from './auth.js'
import type { ImportRunner, ImportStore } from './imports.js'
import type { SessionCookies } from './session-http.js'
import type { UserRepository } from './users.js'

export interface ImportRoutesDeps {
  readonly runner: ImportRunner
  readonly store: ImportStore
  readonly users: UserRepository
  readonly sessions: SessionCookies
  readonly adminToken: string
  /** Largest upload accepted (IMPORT_MAX_UPLOAD_BYTES). */
  readonly maxUploadBytes: number
}

/** Uploads one process spools at once: each holds a connection and fills disk, so a crowd waits its turn. */
const MAX_UPLOADS = 4

/** What an upload may be sent as: a zip; not a CORS-safelisted type, so another site can't post one with the person's cookie. */
const ZIP_TYPES = ['application/zip', 'application/x-zip-compressed', 'application/octet-stream']

const params = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{8,64}$' }, importId: { type: 'string', pattern: '^[A-Za-z0-9_-]{22}$' } },
} as const

const typeSummary = {
  type: 'object',
  properties: {
    records: { type: 'integer' },
    buckets: { type: 'integer' },
    firstMs: { type: 'integer' },
    lastMs: { type: 'integer' },
    released: { type: 'integer' },
    unchanged: { type: 'integer' },
    leftToApi: { type: 'integer' },
    notConsented: { type: 'boolean' },
  },
} as const

const statusResponse = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    state: { type: 'string', enum: ['uploading', 'queued', 'importing', 'done', 'failed', 'interrupted'] },
    uploadedBytes: { type: 'integer' },
    progress: { type: 'number', description: 'share of the export parsed, 0-1' },
    records: { type: 'integer' },
    format: { type: 'string', enum: ['apple-health', 'google-takeout'] },
    error: { type: 'string', description: 'the HTTP status, on a refusal' },
    code: { type: 'string' },
    message: { type: 'string' },
    types: { type: 'object', additionalProperties: typeSummary, description: 'per data type: records found, hourly buckets, period, and what was passed on' },
  },
} as const

/**
 * Uploads of a person's own exports (Apple Health, Google Takeout): the body streams into an
 * encrypted spool, never into memory, and is imported in the background; its status is polled.
 */
export async function importRoutes(app: FastifyInstance, deps: ImportRoutesDeps): Promise<void> {
  const uploading = new Set<string>()
  const ownerCheck = adminOrOwner(deps.adminToken, deps.sessions)

  await app.register(async (scope) => {
    // The body is the upload itself: handed on as the raw stream, never buffered by a parser.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', (_request, _payload, done) => done(null))

    scope.post<{ Params: { id: string } }>(
      '/users/:id/imports',
      {
        onRequest: ownerCheck,
        schema: {
          tags: ['imports'],
          summary: 'Upload an Apple Health export.zip or a Google Takeout archive (the body is the zip)',
          params,
          response: {
            202: statusResponse,
            400: statusResponse,
            404: statusResponse,
            409: statusResponse,
            413: statusResponse,
            415: statusResponse,
            503: statusResponse,
          },
        },
      },
      async (request, reply) => {
        const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
        if (!ZIP_TYPES.includes(type)) {
          request.raw.resume()
          return reply
            .status(415)
            .send({ error: STATUS_CODES[415], code: 'FST_ERR_IMPORT_NOT_ZIP', message: `send the export as the body with Content-Type ${ZIP_TYPES[0]}` })
        }
        const declared = Number(request.headers['content-length'] ?? NaN)
        if (declared > deps.maxUploadBytes) {
          return reply.status(413).send({
            error: STATUS_CODES[413],
            code: 'FST_ERR_IMPORT_TOO_LARGE',
            message: `the upload is larger than the ${deps.maxUploadBytes} bytes an import may be`,
          })
        }
        const userId = request.params.id
        if ((await deps.users.get(userId)) === undefined) return reply.status(404).send({ error: STATUS_CODES[404], message: `no user ${userId}` })

        if (uploading.has(userId) || deps.runner.isImporting(userId)) {
          return reply.status(409).send({
            error: STATUS_CODES[409],
            code: 'FST_ERR_IMPORT_BUSY',
            message: 'an export of yours is still being uploaded or imported; wait for it to finish',
          })
        }
        if (uploading.size >= MAX_UPLOADS) {
          return reply
            .status(503)
            .header('retry-after', '30')
            .send({ error: STATUS_CODES[503], code: 'FST_ERR_IMPORT_BUSY', message: 'FitStream is taking in other exports just now; try again in a minute' })
        }
        uploading.add(userId)
        try {
          return await receive(request, reply, userId)
        } finally {
          uploading.delete(userId)
        }
      },
    )
  })

  /** Spools the body, then starts the import and answers 202; a body that fails is answered with its code. */
  const receive = async (request: FastifyRequest, reply: FastifyReply, userId: string) => {
    const importId = deps.runner.newImportId()
    const spool = deps.runner.spool()
    await deps.store.update(importId, { userId, state: 'uploading', uploadedBytes: 0, progress: 0, records: 0 })
    let lastWrite = 0
    try {
      await spool.write(request.raw, deps.maxUploadBytes, (bytes) => {
        if (Date.now() - lastWrite < 1_000) return
        lastWrite = Date.now()
        void deps.store.update(importId, { uploadedBytes: bytes }).catch(() => undefined)
      })
    } catch (error) {
      await spool.destroy()
      const code = error instanceof ImportError ? error.code : 'FST_ERR_IMPORT_ABORTED'
      const message = error instanceof ImportError ? error.message : 'the upload stopped before it was complete'
      await deps.store.update(importId, { state: 'failed', code, message, uploadedBytes: spool.size })
      // The rest of an oversized body is not read: the connection is closed after the answer.
      if (code === 'FST_ERR_IMPORT_TOO_LARGE')
        return reply.status(413).header('connection', 'close').send({ error: STATUS_CODES[413], id: importId, state: 'failed', code, message })
      return reply.status(400).send({ error: STATUS_CODES[400], id: importId, state: 'failed', code, message })
    }
    await deps.store.update(importId, { uploadedBytes: spool.size })
    deps.runner.start(importId, userId, spool)
    return reply.status(202).send({ id: importId, state: 'queued', uploadedBytes: spool.size, progress: 0, records: 0 })
  }

  app.get<{ Params: { id: string; importId: string } }>(
    '/users/:id/imports/:importId',
    {
      onRequest: ownerCheck,
      schema: {
        tags: ['imports'],
        summary: "An import's progress and, once done, what it found per type and period",
        params,
        response: { 200: statusResponse, 404: statusResponse },
      },
    },
    async (request, reply) => {
      const status = await deps.store.get(request.params.importId)
      if (status === undefined || status.userId !== request.params.id) return reply.status(404).send({ error: STATUS_CODES[404], message: 'no such import' })
      // Neither the owner nor the time of the last change: the answer is the import's progress and findings.
      const { id, state, uploadedBytes, progress, records, format, code, message, types } = status
      return { id, state, uploadedBytes, progress, records, format, code, message, types }
    },
  )
}
