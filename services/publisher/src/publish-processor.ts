import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { StreamrClient } from '@streamr/sdk'
import { UpstreamError, type JobContext, type StageData } from '@fitstream/shared'
import { packMessages } from './messages.js'
import { streamIdFor, type StreamNaming } from './streams.js'

export interface PublishResult {
  readonly messages: number
  readonly records: number
  /** Messages skipped because an earlier attempt of this job had already published them. */
  readonly alreadyPublished: number
}

export interface PublishProcessorDeps {
  readonly client: StreamrClient
  readonly naming: StreamNaming
  readonly redis: Redis
  readonly prefix: string
  readonly maxMessageBytes: number
}

/** How long the record of what a job published is kept: longer than any retry schedule. */
const PUBLISHED_TTL_SECONDS = 7 * 86_400

/** Streamr errors that no retry can fix: the job is dead-lettered with the reason. */
const PERMANENT_CODES = new Set([
  'MISSING_PERMISSION',
  'STREAM_NOT_FOUND',
  'INVALID_ARGUMENT',
  'INVALID_MESSAGE_CONTENT',
  'INVALID_PARTITION',
  'ENCRYPTION_POLICY_VIOLATION',
  'UNSUPPORTED_OPERATION',
])

/**
 * Publishes a job's records to their data type's stream, the pseudonym as partition key. Each
 * message published is noted in Redis, so a retried job skips what already went out.
 */
export function createPublishProcessor(deps: PublishProcessorDeps) {
  return async (data: StageData<'publish'>, context: JobContext): Promise<PublishResult> => {
    const messages = packMessages(data.records, deps.maxMessageBytes)
    const doneKey = `${deps.prefix}:published:${context.jobId}`
    const done = new Set(context.attempt > 1 ? await deps.redis.smembers(doneKey) : [])
    let alreadyPublished = 0
    for (const message of messages) {
      const digest = createHash('sha256')
        .update(message.records.map((r) => r.id).join(','))
        .digest('base64url')
        .slice(0, 16)
      if (done.has(digest)) {
        alreadyPublished++
        continue
      }
      const streamId = streamIdFor(deps.naming, message.type)
      try {
        await deps.client.publish(streamId, message, { partitionKey: message.pseudonym })
      } catch (error) {
        throw toPublishError(error, streamId)
      }
      await deps.redis.multi().sadd(doneKey, digest).expire(doneKey, PUBLISHED_TTL_SECONDS).exec()
    }
    await deps.redis.del(doneKey)
    context.logger.info({ syncId: data.syncId, messages: messages.length, records: data.records.length, alreadyPublished }, 'records published')
    return { messages: messages.length, records: data.records.length, alreadyPublished }
  }
}

function toPublishError(error: unknown, streamId: string): UpstreamError {
  const code = (error as { code?: unknown } | null)?.code
  const message = error instanceof Error ? error.message : String(error)
  if (typeof code === 'string' && PERMANENT_CODES.has(code)) {
    return new UpstreamError(`FST_ERR_STREAMR_${code}`, `Streamr refused the publish to ${streamId} (${code}): ${message}`, { permanent: true })
  }
  return new UpstreamError('FST_ERR_STREAMR_UNAVAILABLE', `publish to ${streamId} failed: ${message}`)
}
