import type { StreamrClient } from '@streamr/sdk'
import { UpstreamError, type JobContext, type StageData } from '@fitstream/shared'
import { LeaseLostError, type DeliveryJournal, type JobJournal } from './delivery-journal.js'
import type { PublisherMetrics } from './metrics.js'
import { deliveryKeys, outgoingMessages, type OutgoingMessage } from './messages.js'
import type { SlotStore } from './slot-store.js'
import { cohortStreamIdFor, streamIdFor, type StreamNaming } from './streams.js'

export interface PublishResult {
  readonly messages: number
  readonly records: number
  readonly cohorts: number
  /** Messages skipped because an earlier attempt of this job had already published them. */
  readonly alreadyPublished: number
  /**
   * Messages a crashed process had noted as published, sent again with their identities (see
   * DeliveryJournal): subscribers' nodes drop those that had reached them.
   */
  readonly republished: number
  /** With release slots: the slot the records are held for (ms since epoch). */
  readonly heldFor?: number
}

/** Release slots: where a job's records wait, and how their streams are checked first. */
export interface SlotHolding {
  readonly store: SlotStore
  /** Whether the publisher key may publish to the stream (read from the chain, cached by the SDK). */
  readonly canPublish?: (streamId: string) => Promise<boolean>
}

export interface PublishProcessorDeps {
  readonly client: Pick<StreamrClient, 'publish'>
  /** Resolves once this process is connected to the stream's subscribers (see joinStreamParts). */
  readonly joined?: (streamId: string) => Promise<void>
  readonly naming: StreamNaming
  readonly journal: DeliveryJournal
  readonly maxMessageBytes: number
  readonly metrics?: PublisherMetrics
  /**
   * Another process took a job's lease over while this one was still publishing it (this process
   * stalled past its job lock). The client's link on that chain is stale from then on, so the
   * process should restart before it could take that chain over in turn.
   */
  readonly onLeaseLost?: (error: LeaseLostError) => void
  /**
   * What time it is (default: the clock): a job's messages are timestamped from when it starts, and
   * its records held for the first slot after it.
   */
  readonly now?: () => number
  /** Hold records for shared release slots instead of publishing each job as it comes. */
  readonly slots?: SlotHolding
  /** Fault injection for crash tests (PUBLISH_CRASH_AT; see crashPointFor): none by default. */
  readonly crashPoint?: CrashHook
}

/** The points of publishing where a crash test can kill the publisher (see PUBLISH_CRASH_AT). */
export type CrashPoint = 'held' | 'planned' | 'published' | 'noting' | 'noted' | 'completed'

/** Called at every crash point (`message`: the message's position in its job or slot, from 1). */
export type CrashHook = (point: CrashPoint, message?: number) => void

/**
 * The hook for a PUBLISH_CRASH_AT setting (`point` or `point:n`): it calls `crash` at that point,
 * for the n-th message when n is given; undefined when unset, so no hook runs at all.
 */
export function crashPointFor(setting: string | undefined, crash: () => void): CrashHook | undefined {
  if (setting === undefined) return undefined
  const [point, position] = setting.split(':')
  return (at, message) => {
    if (at === point && (position === undefined || message === Number(position))) crash()
  }
}

/** Streamr errors that no retry can fix: the job is dead-lettered with the reason. */
const PERMANENT_CODES = new Set([
  'MISSING_PERMISSION',
  'STREAM_NOT_FOUND',
  'NOT_FOUND',
  'INVALID_ARGUMENT',
  'INVALID_MESSAGE_CONTENT',
  'INVALID_PARTITION',
  'ENCRYPTION_POLICY_VIOLATION',
  'UNSUPPORTED_OPERATION',
])

/** What the delivery loop needs of a job: its id and attempt (BullMQ's, or a release slot's). */
export type DeliveryContext = Pick<JobContext, 'jobId' | 'attempt' | 'maxAttempts' | 'logger'> & {
  /**
   * Never dead-lettered (a release slot): even a permanent failure keeps the lease, so the next try
   * resumes on the same chains rather than under new identities that subscribers would drop.
   */
  readonly keepsLease?: boolean
}

/** Under which identity message `index` goes out: its chain and timestamp (the SDK numbers the rest). */
type Identity = (index: number) => { readonly msgChainId: string; readonly timestamp: number }

export interface Delivery {
  readonly messages: number
  readonly alreadyPublished: number
  readonly republished: number
  /** `done`: an earlier run had published everything. */
  readonly state: 'open' | 'done'
}

/**
 * Publishes a list of messages exactly once across retries and crashes, with the DeliveryJournal
 * under `context.jobId`: what a job publishes at once, and what a release slot publishes.
 */
export function createDeliverer(deps: PublishProcessorDeps) {
  // Per job: the messages this process saw published, and whether it took the lease over from
  // another process (until the job ends, so that a retry here finishes the replay). The SDK advances
  // a chain as soon as it builds a message, so a same-process retry of a message whose note failed
  // to reach Redis would go out under a new identity; this remembers it instead.
  const publishedHere = new Map<string, { readonly sent: Set<number>; readonly takenOver: boolean }>()

  return async (
    context: DeliveryContext,
    build: (journal: JobJournal) => { readonly messages: readonly OutgoingMessage[]; readonly identity: Identity },
  ): Promise<Delivery> => {
    const journal = await deps.journal.open(context.jobId, deps.maxMessageBytes, deps.now?.())
    if (journal.state === 'done') return { messages: 0, alreadyPublished: 0, republished: 0, state: 'done' }
    const { messages, identity } = build(journal)
    // A lease this process took over from another (one that died or stalled): what that process
    // noted may not have left it.
    const progress = publishedHere.get(context.jobId) ?? { sent: new Set<number>(), takenOver: journal.takenOver }
    publishedHere.set(context.jobId, progress)
    const { sent: here, takenOver } = progress
    let alreadyPublished = 0
    let republished = 0
    try {
      for (const [index, message] of messages.entries()) {
        const keys = deliveryKeys(message)
        if (here.has(index) || keys.every((key) => journal.earlier.has(key))) {
          alreadyPublished++
          if (here.has(index)) await deps.journal.notePublished(journal, keys)
          continue
        }
        const noted = keys.every((key) => journal.published.has(key))
        if (noted && !takenOver) {
          alreadyPublished++
          continue
        }
        await publishOne(deps, message, identity(index))
        here.add(index)
        deps.crashPoint?.('published', index + 1)
        if (noted) republished++
        else {
          const note = deps.journal.notePublished(journal, keys)
          deps.crashPoint?.('noting', index + 1)
          await note
        }
        deps.crashPoint?.('noted', index + 1)
      }
      await deps.journal.complete(journal, messages.length)
    } catch (error) {
      if (error instanceof LeaseLostError) {
        // The job is another process's now: leave its lease and journal alone, and stop here.
        publishedHere.delete(context.jobId)
        deps.onLeaseLost?.(error)
        throw new UpstreamError('FST_ERR_PUBLISH_LEASE_LOST', error.message)
      }
      const failure =
        error instanceof UpstreamError
          ? error
          : new UpstreamError('FST_ERR_PUBLISH_JOURNAL', `the delivery journal in Redis failed: ${error instanceof Error ? error.message : String(error)}`)
      if (context.keepsLease !== true && (failure.permanent || context.attempt >= context.maxAttempts)) {
        // About to be dead-lettered: nothing will resume this lease, so hand the chain back.
        await deps.journal.abandon(journal, messages.length).catch(() => undefined)
        publishedHere.delete(context.jobId)
      }
      throw failure
    }
    publishedHere.delete(context.jobId)
    return { messages: messages.length, alreadyPublished, republished, state: 'open' }
  }
}

/**
 * Publishes a job's records to their data type's stream (the pseudonym as partition key) and its
 * cohorts to the type's cohort stream, each message exactly once across retries and crashes: see
 * DeliveryJournal for how. With release slots (`deps.slots`), it only checks that the streams can
 * be published to and holds the records for their slot (see createSlotReleaser).
 */
export function createPublishProcessor(deps: PublishProcessorDeps) {
  const deliver = createDeliverer(deps)
  return async (data: StageData<'publish'>, context: JobContext): Promise<PublishResult> => {
    const counts = { records: data.records.length, cohorts: data.cohorts.length }
    if (deps.slots !== undefined) return holdForSlot(deps, deps.slots, data, context)
    const delivery = await deliver(context, (journal) => ({
      messages: outgoingMessages(data, journal.maxMessageBytes),
      identity: (index) => ({ msgChainId: journal.chain, timestamp: journal.baseTimestamp + index }),
    }))
    if (delivery.state === 'done') {
      context.logger.info({ syncId: data.syncId }, 'job already published by an earlier run: nothing to do')
      return { messages: 0, ...counts, alreadyPublished: 0, republished: 0 }
    }
    const { messages, alreadyPublished, republished } = delivery
    context.logger.info({ syncId: data.syncId, messages, ...counts, alreadyPublished, republished }, 'records published')
    return { messages, ...counts, alreadyPublished, republished }
  }
}

/**
 * Holds a job's records in Redis until their release slot. The job's streams are checked first, so
 * that a missing stream or permission dead-letters the job that needs it, with the reason.
 */
async function holdForSlot(deps: PublishProcessorDeps, slots: SlotHolding, data: StageData<'publish'>, context: JobContext): Promise<PublishResult> {
  const counts = { records: data.records.length, cohorts: data.cohorts.length }
  if (await deps.journal.isDone(context.jobId)) {
    context.logger.info({ syncId: data.syncId }, 'job already held by an earlier run: nothing to do')
    return { messages: 0, ...counts, alreadyPublished: 0, republished: 0 }
  }
  const streams = new Set([...data.records.map((r) => streamIdFor(deps.naming, r.type)), ...data.cohorts.map((c) => cohortStreamIdFor(deps.naming, c.type))])
  for (const streamId of streams) {
    try {
      await deps.joined?.(streamId)
      if (slots.canPublish !== undefined && !(await slots.canPublish(streamId))) {
        throw Object.assign(new Error(`no PUBLISH permission on ${streamId}`), { code: 'MISSING_PERMISSION' })
      }
    } catch (error) {
      throw toPublishError(error, streamId)
    }
  }
  // The hold is noted under the job id in the same step, so a retry after a crash before markDone
  // finds the slot it was held for rather than holding the records again for a later slot (they
  // would then go out twice, in two slots' messages).
  const slot = await slots.store.hold(context.jobId, data, deps.now?.() ?? Date.now())
  deps.crashPoint?.('held')
  await deps.journal.markDone(context.jobId)
  await slots.store.forgetHold(context.jobId)
  deps.metrics?.recordsHeld.inc(counts.records + counts.cohorts)
  context.logger.info({ syncId: data.syncId, ...counts, slot: new Date(slot).toISOString() }, 'records held for their release slot')
  return { messages: 0, ...counts, alreadyPublished: 0, republished: 0, heldFor: slot }
}

async function publishOne(deps: PublishProcessorDeps, message: OutgoingMessage, identity: { msgChainId: string; timestamp: number }): Promise<void> {
  const streamId = message.kind === 'records' ? streamIdFor(deps.naming, message.content.type) : cohortStreamIdFor(deps.naming, message.content.type)
  try {
    await deps.joined?.(streamId)
    const stop = deps.metrics?.publishDuration.startTimer({ kind: message.kind })
    await deps.client.publish(streamId, message.content, { partitionKey: message.partitionKey, ...identity })
    stop?.()
    deps.metrics?.messagesPublished.inc({ kind: message.kind })
  } catch (error) {
    throw toPublishError(error, streamId)
  }
}

function toPublishError(error: unknown, target: string): UpstreamError {
  const code = (error as { code?: unknown } | null)?.code
  const message = error instanceof Error ? error.message : String(error)
  if (typeof code === 'string' && PERMANENT_CODES.has(code)) {
    const reason =
      code === 'MISSING_PERMISSION'
        ? 'the publisher key has no PUBLISH permission on it'
        : code.includes('NOT_FOUND')
          ? 'the stream does not exist (run `fitstream streams provision`)'
          : code
    return new UpstreamError(`FST_ERR_STREAMR_${code}`, `Streamr refused the publish to ${target}: ${reason} (${code}: ${message})`, { permanent: true })
  }
  return new UpstreamError('FST_ERR_STREAMR_UNAVAILABLE', `publish to ${target} failed: ${message}`, { cause: error })
}
