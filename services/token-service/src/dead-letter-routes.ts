import type { FastifyInstance } from 'fastify'
import { DeadLetters, STAGE_NAMES, redactDeadLetter, type DeadLetterFilter, type Stage } from '@fitstream/shared'
import { requireToken } from './auth.js'

const stageParam = { type: 'string', enum: STAGE_NAMES } as const
const filterQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    stage: stageParam,
    code: { type: 'string', pattern: '^[A-Z0-9_]{1,64}$', description: 'error code, e.g. FST_ERR_GOOGLE_REJECTED' },
    since: { type: 'string', format: 'date-time', description: 'failed at or after' },
    until: { type: 'string', format: 'date-time', description: 'failed before' },
  },
} as const
// Text, as every query value is: the server coerces no types, so an integer schema would refuse `limit=10`.
const limitParam = { type: 'string', pattern: '^([1-9][0-9]{0,2}|1000)$', description: 'at most this many, 1 to 1000 (default 100)' } as const
const entryParams = {
  type: 'object',
  required: ['stage', 'id'],
  properties: { stage: stageParam, id: { type: 'string', minLength: 1, maxLength: 256 } },
} as const

interface FilterQuery {
  stage?: Stage
  code?: string
  since?: string
  until?: string
}

function toFilter(query: FilterQuery): DeadLetterFilter {
  return {
    ...(query.stage === undefined ? {} : { stage: query.stage }),
    ...(query.code === undefined ? {} : { code: query.code }),
    ...(query.since === undefined ? {} : { since: Date.parse(query.since) }),
    ...(query.until === undefined ? {} : { until: Date.parse(query.until) }),
  }
}

/**
 * Dead letters for operators (admin token): per-stage counts by reason, the letters (raw data
 * hidden), replay back to the stage they failed in, and purge, which needs `confirm=purge`.
 */
export async function deadLetterRoutes(app: FastifyInstance, deadLetters: DeadLetters, adminToken: string): Promise<void> {
  await app.register(async (admin) => {
    admin.addHook('onRequest', requireToken(adminToken))
    const tags = ['dead letters']
    const security = [{ admin: [] }]

    admin.get('/dead-letters', { schema: { tags, security, summary: 'Dead letters per stage, with counts by error code' } }, async () => ({
      stages: await deadLetters.summary(),
    }))

    admin.get<{ Querystring: FilterQuery & { limit?: string } }>(
      '/dead-letters/entries',
      {
        schema: {
          tags,
          security,
          summary: 'Dead letters matching a filter, newest first (raw data hidden)',
          querystring: { ...filterQuery, properties: { ...filterQuery.properties, limit: limitParam } },
        },
      },
      async (request) => {
        const entries = await deadLetters.list(toFilter(request.query))
        entries.sort((a, b) => b.letter.failedAt.localeCompare(a.letter.failedAt))
        return {
          total: entries.length,
          entries: entries.slice(0, Number(request.query.limit ?? 100)).map(({ id, letter }) => ({ id, ...redactDeadLetter(letter) })),
        }
      },
    )

    admin.get<{ Params: { stage: Stage; id: string } }>(
      '/dead-letters/:stage/:id',
      { schema: { tags, security, summary: 'One dead letter (raw data hidden)', params: entryParams } },
      async (request, reply) => {
        const entry = await deadLetters.get(request.params.stage, request.params.id)
        if (entry === undefined)
          return reply.status(404).send({ error: 'Not Found', message: `no dead letter ${request.params.id} in ${request.params.stage}-dlq` })
        return { id: entry.id, ...redactDeadLetter(entry.letter) }
      },
    )

    admin.post<{ Params: { stage: Stage; id: string } }>(
      '/dead-letters/:stage/:id/replay',
      { schema: { tags, security, summary: 'Put one dead letter back on its stage (never twice)', params: entryParams } },
      async (request, reply) => {
        const result = await deadLetters.replay(request.params.stage, request.params.id)
        if (result === undefined)
          return reply.status(404).send({ error: 'Not Found', message: `no dead letter ${request.params.id} in ${request.params.stage}-dlq` })
        request.log.info({ stage: result.stage, deadLetter: result.id, jobId: result.jobId }, 'dead letter replayed')
        return result
      },
    )

    admin.post<{ Body: FilterQuery & { all?: boolean } }>(
      '/dead-letters/replay',
      {
        schema: {
          tags,
          security,
          summary: 'Replay every dead letter matching a filter; an empty filter needs all=true',
          body: { ...filterQuery, properties: { ...filterQuery.properties, all: { type: 'boolean' } } },
        },
      },
      async (request, reply) => {
        const { all, ...query } = request.body ?? {}
        if (Object.keys(query).length === 0 && all !== true) {
          return reply.status(400).send({ error: 'Bad Request', message: 'give a filter (stage, code, since, until) or all: true to replay every dead letter' })
        }
        const results = await deadLetters.replayMatching(toFilter(query))
        request.log.info({ filter: query, replayed: results.length }, 'dead letters replayed')
        return { replayed: results.filter((r) => r.replayed).length, alreadyReplayed: results.filter((r) => !r.replayed).length, results }
      },
    )

    admin.delete<{ Querystring: FilterQuery & { confirm?: string } }>(
      '/dead-letters',
      {
        schema: {
          tags,
          security,
          summary: 'Purge dead letters matching a filter for good; without confirm=purge it only counts them',
          querystring: { ...filterQuery, properties: { ...filterQuery.properties, confirm: { type: 'string' } } },
        },
      },
      async (request, reply) => {
        const { confirm, ...query } = request.query
        const filter = toFilter(query)
        if (confirm !== 'purge') {
          const wouldPurge = (await deadLetters.list(filter)).length
          return reply
            .status(409)
            .send({ error: 'Conflict', message: `this would purge ${wouldPurge} dead letters for good; repeat with confirm=purge`, wouldPurge })
        }
        const purged = await deadLetters.purge(filter)
        request.log.warn({ filter: query, purged }, 'dead letters purged')
        return { purged }
      },
    )
  })
}
