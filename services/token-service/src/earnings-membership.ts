import type { RedisConnection } from '@fitstream/shared'
import { randomBytes } from 'node:crypto'
import { MEMBERSHIP_BATCH_MAX, readPrivacyReport, type Logger, type MembershipQueues } from '@fitstream/shared'
import { memberRefOf, type MembershipClient } from './earnings.js'

/** What an erasure receipt says about money: what was paid out, and what is left and how to claim it. */
export interface EarningsOnErasure {
  /** Paid out before the account went, in token units ("0.0" when nothing). */
  readonly paid: string
  readonly paidTo?: string
  /** Still in the Data Union for this person, in token units. */
  readonly remaining: string
  readonly token?: string
  readonly claim:
    { readonly kind: 'nothing' } | { readonly kind: 'own-address'; readonly address: string } | { readonly kind: 'claim-code'; readonly code: string }
}

export interface MemberEnrolmentDeps {
  readonly redis: RedisConnection
  readonly prefix: string
  /** The prefix of the privacy ledgers, read to see whether anything was released (default `prefix`). */
  readonly privacyPrefix?: string
  readonly membership: MembershipClient
  readonly queues: MembershipQueues
  /** MEMBER_REF_KEY. */
  readonly refKey: Buffer
  readonly logger: Logger
  readonly now?: () => number
}

/** How often pending joins are sent as one batch (default a minute). */
export const MEMBERSHIP_FLUSH_MS = 60_000

/**
 * Membership follows consent: a person joins the product's Data Union once their data has first
 * been released for sale (the anonymiser's ledger shows records released or cohort contributions),
 * and leaves when they delete their account (FitStream's way to stop selling altogether). Joins wait
 * in a pending set and go to the membership stage as one batch (one transaction) per flush; a part
 * goes at once. The token service keeps only the member address it asked to join, under the
 * person's own key (erased with them), and the pending addresses.
 */
export class MemberEnrolment {
  constructor(private readonly deps: MemberEnrolmentDeps) {}

  private key(userId: string): string {
    return `${this.deps.prefix}:token-service:member:${userId}`
  }

  private get pendingKey(): string {
    return `${this.deps.prefix}:token-service:member-joins-pending`
  }

  private now(): number {
    return (this.deps.now ?? Date.now)()
  }

  private timer: NodeJS.Timeout | undefined

  /** Flushes pending joins every `intervalMs` (MEMBERSHIP_FLUSH_MS); any replica may, each batch is read once per flush. */
  start(intervalMs = MEMBERSHIP_FLUSH_MS): void {
    this.timer ??= setInterval(() => {
      this.flush().catch((err: unknown) =>
        this.deps.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'pending Data Union joins not sent yet'),
      )
    }, intervalMs)
    this.timer.unref()
  }

  async close(): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.deps.queues.close()
  }

  /** After a sync: enrols the person if their data has been released and they are not enrolled yet. */
  async afterSync(userId: string): Promise<'enrolled' | 'already' | 'nothing-released'> {
    if ((await this.deps.redis.exists(this.key(userId))) === 1) return 'already'
    const report = await readPrivacyReport(this.deps.redis, this.deps.privacyPrefix ?? this.deps.prefix, userId)
    if (report.totals.recordsReleased === 0 && report.totals.cohortContributions === 0) return 'nothing-released'
    const ref = memberRefOf(userId, this.deps.refKey)
    const answer = await this.deps.membership.ensureMember(ref)
    if (answer.status !== 200) throw new Error(`the membership service refused a member address (${answer.status})`)
    const { address } = answer.body as { address: string }
    await this.deps.redis.multi().sadd(this.pendingKey, address).set(this.key(userId), address).exec()
    return 'enrolled'
  }

  /**
   * Sends the pending joins as one batch (up to MEMBERSHIP_BATCH_MAX); returns how many. An address
   * leaves the pending set only after its join is queued, so a crash in between sends it again
   * (harmless: the stage joins nobody twice) rather than never. The batch carries the time it was
   * read, so a part asked for after that time wins over it whatever order the jobs run in.
   */
  async flush(): Promise<number> {
    const addresses = await this.deps.redis.srandmember(this.pendingKey, MEMBERSHIP_BATCH_MAX)
    if (addresses.length === 0) return 0
    const readAt = this.now()
    await this.deps.queues.request('join', addresses, `join-batch-${readAt}-${randomBytes(4).toString('hex')}`, readAt)
    await this.deps.redis.srem(this.pendingKey, ...addresses)
    return addresses.length
  }

  /**
   * On erasure: leaves the Data Union, and pays out first to `payTo` when given; the receipt says what
   * was paid and what is left to claim. Undefined when the person never joined.
   */
  async erase(userId: string, payTo?: string): Promise<EarningsOnErasure | undefined> {
    const address = await this.deps.redis.get(this.key(userId))
    if (address === null) return undefined
    const ref = memberRefOf(userId, this.deps.refKey)
    let answer: Awaited<ReturnType<MembershipClient['erase']>>
    try {
      // A join still pending is dropped; one already read for a batch is outdone by this later part.
      await this.deps.redis.srem(this.pendingKey, address)
      const at = this.now()
      await this.deps.queues.request('part', [address], `part-${ref}-${at}`, at)
      answer = await this.deps.membership.erase(ref, payTo)
    } finally {
      // Nothing naming the person stays here, settled or not: the membership service keeps the member
      // key under the reference, which the operator can derive again from the account id if asked.
      await this.deps.redis.del(this.key(userId))
    }
    if (answer.status !== 200) {
      const body = answer.body as { code?: string; message?: string }
      throw new Error(`the membership service could not settle earnings (${answer.status} ${body.code ?? ''}): ${body.message ?? ''}`)
    }
    const receipt = answer.body as { erased: boolean; paid?: string; paidTo?: string; remaining?: string; token?: string; claim?: EarningsOnErasure['claim'] }
    return {
      paid: receipt.paid ?? '0.0',
      ...(receipt.paidTo === undefined ? {} : { paidTo: receipt.paidTo }),
      remaining: receipt.remaining ?? '0.0',
      ...(receipt.token === undefined ? {} : { token: receipt.token }),
      claim: receipt.claim ?? { kind: 'nothing' },
    }
  }
}

/** The erasure receipt's line about money, in plain words. */
export function describeEarningsOnErasure(earnings: EarningsOnErasure | { readonly notSettled: string }): string {
  if ('notSettled' in earnings) return earnings.notSettled
  const token = earnings.token ?? ''
  const paid = earnings.paidTo === undefined ? 'No earnings were paid out.' : `${earnings.paid} ${token} of your earnings were paid to ${earnings.paidTo}.`
  switch (earnings.claim.kind) {
    case 'nothing':
      return `${paid} Nothing remains to claim.`
    case 'own-address':
      return `${paid} ${earnings.remaining} ${token} remain claimable from your own wallet at ${earnings.claim.address}.`
    case 'claim-code':
      return `${paid} ${earnings.remaining} ${token} remain claimable: keep this claim code, ${earnings.claim.code}, and give it to the operator with an address to be paid (it works once).`
  }
}
