import type { Logger } from '@fitstream/shared'
import { planSlot, type RandomInt } from './messages.js'
import type { PublisherMetrics } from './metrics.js'
import type { CrashHook, createDeliverer } from './publish-processor.js'
import type { SlotStore } from './slot-store.js'

export interface SlotReleaserOptions {
  readonly store: SlotStore
  /** The publish processor's delivery loop, so a slot is published exactly as a job is. */
  readonly deliver: ReturnType<typeof createDeliverer>
  readonly maxMessageBytes: number
  /** This process's name (the journal's instance): who holds a slot's lock. */
  readonly instance: string
  /** How long a slot's lock lasts unless renewed (PUBLISH_LOCK_MS): another process takes it over after. */
  readonly lockMs: number
  readonly logger: Logger
  readonly metrics?: PublisherMetrics
  /** Randomness for the shuffles and chains; node:crypto's unless a test pins it. */
  readonly random?: RandomInt
  /** Fault injection for crash tests (PUBLISH_CRASH_AT): none by default. */
  readonly crashPoint?: CrashHook
}

/** Longest wait before a slot whose release failed is tried again. */
const MAX_BACKOFF_MS = 300_000

/**
 * Publishes each release slot once its time has come: everything held for it, shuffled across
 * people, under the slot's timestamp, each epoch on a chain of its own (see planSlot). One process
 * releases a slot at a time (a lock in Redis, renewed while it publishes); the slot's messages are
 * planned once and published through the delivery journal under `slot-<time>`, so a retry, a
 * crash or another process taking over publishes every message once, with its identity.
 */
export class SlotReleaser {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<unknown> | undefined
  private readonly failures = new Map<number, { readonly count: number; readonly retryAt: number }>()

  constructor(private readonly options: SlotReleaserOptions) {}

  /** Releases every slot due at `now`, oldest first; returns how many it released. */
  async releaseDue(now = Date.now()): Promise<number> {
    let released = 0
    for (const slot of await this.options.store.due(now)) {
      if ((this.failures.get(slot)?.retryAt ?? 0) > now) continue
      if (await this.release(slot, now)) released++
    }
    return released
  }

  /** Publishes one slot; false when another process is releasing it or the release failed. */
  async release(slot: number, now = Date.now()): Promise<boolean> {
    const { store, instance, lockMs, metrics } = this.options
    const logger = this.options.logger.child({ slot: new Date(slot).toISOString() })
    if (!(await store.lock(slot, instance, lockMs))) return false
    const renewal = setInterval(() => void store.renew(slot, instance, lockMs).catch(() => undefined), Math.max(100, Math.floor(lockMs / 3)))
    const attempt = (this.failures.get(slot)?.count ?? 0) + 1
    try {
      const plan = await store.plan(slot, (held) => planSlot(held, this.options.maxMessageBytes, this.options.random))
      this.options.crashPoint?.('planned')
      const delivery =
        plan.length === 0
          ? undefined
          : await this.options.deliver({ jobId: `slot-${slot}`, attempt, maxAttempts: Number.POSITIVE_INFINITY, keepsLease: true, logger }, () => ({
              messages: plan.map(({ message }) => message),
              // Every message under the slot's time: the SDK numbers those of one chain and partition.
              identity: (index) => ({ msgChainId: plan[index]!.msgChainId, timestamp: slot }),
            }))
      this.options.crashPoint?.('completed')
      await store.released(slot)
      this.failures.delete(slot)
      metrics?.slotsReleased.inc()
      metrics?.slotReleaseLag.observe(Math.max(0, Date.now() - slot) / 1000)
      const records = plan.reduce((n, { message }) => n + message.content.records.length, 0)
      logger.info(
        { messages: plan.length, records, alreadyPublished: delivery?.alreadyPublished ?? 0, republished: delivery?.republished ?? 0 },
        'release slot published',
      )
      return true
    } catch (err) {
      const retryIn = Math.min(MAX_BACKOFF_MS, 1_000 * 2 ** Math.min(attempt - 1, 16))
      this.failures.set(slot, { count: attempt, retryAt: now + retryIn })
      logger.warn({ err, attempt, retryInMs: retryIn }, 'release slot not published; its records stay held and it will retry')
      return false
    } finally {
      clearInterval(renewal)
      await store.unlock(slot, instance).catch(() => undefined)
    }
  }

  /** Releases due slots every `everyMs` until stop(). */
  start(everyMs = 1_000): void {
    this.timer = setInterval(() => {
      if (this.running !== undefined) return
      this.running = this.releaseDue()
        .catch((err: unknown) => this.options.logger.warn({ err }, 'could not read the due release slots; trying again shortly'))
        .finally(() => (this.running = undefined))
    }, everyMs)
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.running
  }
}
