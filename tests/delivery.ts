import { syntheticBucket, type AggregatePoint } from '@fitstream/fake-google'
import { Stack, recordsOf, type RegisteredUser, type StackOptions, type Subscriber } from '@fitstream/devstack'
import { dataType, type DataTypeKey } from '@fitstream/shared'

/**
 * What a buyer should receive for the users a test registered, and what it did receive: the
 * yardstick of the fault tests ("every record delivered exactly once").
 */
export const HOUR = 3_600_000

/**
 * What the devstack's privacy policy (services/anonymizer/policies/opted-in.yaml: the default policy
 * with everyone opted in to individual records, heart-rate min and max kept) releases for one of the
 * fake's aggregate points, as individual hourly records: steps clamped to [0, 12000] and rounded to
 * tens; calories clamped to [0, 2000] and rounded to whole kcal; heart rate clamped to [35, 200] and
 * rounded to whole bpm. No noise on individual records.
 */
const DEFAULT_POLICY: Record<string, { clamp: [number, number]; round: number }> = {
  count: { clamp: [0, 12_000], round: 10 },
  kcal: { clamp: [0, 2_000], round: 1 },
  avg: { clamp: [35, 200], round: 1 },
  max: { clamp: [35, 200], round: 1 },
  min: { clamp: [35, 200], round: 1 },
}

export function expectedValues(type: DataTypeKey, point: AggregatePoint): Record<string, number> {
  const spec = dataType(type)
  return Object.fromEntries(
    spec.fields.map((field, i) => {
      const value = point.value[i]!
      const raw = 'intVal' in value ? value.intVal : value.fpVal
      const { clamp, round } = DEFAULT_POLICY[field.name]!
      return [field.name, Math.round(Math.min(clamp[1], Math.max(clamp[0], raw)) / round) * round]
    }),
  )
}

/** `type|start` → values: what the default policy releases of a user's hourly data in [start, end). */
export function expectedRecords(user: RegisteredUser, start: number, end: number): Map<string, string> {
  const expected = new Map<string, string>()
  for (const type of user.dataTypes) {
    for (let h = start; h < end; h += HOUR) {
      for (const point of syntheticBucket(user.google.seed, dataType(type).fit!.dataType, h, h + HOUR)) {
        expected.set(`${type}|${new Date(h).toISOString()}`, JSON.stringify(expectedValues(type, point)))
      }
    }
  }
  return expected
}

export interface DeliveryReport {
  readonly users: number
  readonly usersComplete: number
  /** Records the default policy releases for the users' synced windows. */
  readonly expected: number
  /** Records received, duplicates included. */
  readonly received: number
  /** Distinct records received (pseudonym, type, start). */
  readonly distinct: number
  /** Deliveries of a record id and revision beyond the first. */
  readonly duplicates: number
  /** Received records that match no user's data (wrong values, or a pseudonym of nobody's). */
  readonly unexpected: number
}

/**
 * Follows the users a test registered: their synced windows as the token service reports them, and
 * what the subscriber got. A user is complete when one pseudonym's records equal exactly what the
 * default policy releases of that user's window.
 */
export class DeliveryCheck {
  readonly users: RegisteredUser[] = []
  private readonly windows = new Map<string, { first: number; last: number }>()

  constructor(
    readonly stack: Stack,
    readonly subscriber: Subscriber,
  ) {}

  /** How each fault test begins: a stack, and a buyer's subscriber whose deliveries are checked. */
  static async start(options: StackOptions): Promise<DeliveryCheck> {
    const stack = await Stack.start(options)
    try {
      return new DeliveryCheck(stack, await stack.startSubscriber())
    } catch (err) {
      await stack.stop()
      throw err
    }
  }

  add(...users: RegisteredUser[]): void {
    this.users.push(...users)
  }

  /**
   * Reads each user's window from the token service: it starts a day (BACKFILL_DAYS=1) before where
   * the backfill was planned to end, and ends at `fetchedUntil`. The backfill's end is read rather
   * than the first `fetchedUntil` seen: a sync planned at a later hour (while Google is down, say)
   * moves `fetchedUntil` past it before the check first looks.
   */
  async refreshWindows(): Promise<boolean> {
    let all = true
    for (const user of this.users) {
      const response = await this.stack.api('GET', `/users/${user.userId}`).catch(() => undefined)
      const body = response?.body as { fetchedUntil?: string | null; backfill?: { until?: string } | null } | undefined
      const until = body?.fetchedUntil
      const backfillEnd = body?.backfill?.until
      if (typeof until !== 'string' || typeof backfillEnd !== 'string') {
        all = false
        continue
      }
      const known = this.windows.get(user.userId)
      this.windows.set(user.userId, { first: Date.parse(backfillEnd), last: Math.max(known?.last ?? 0, Date.parse(until)) })
    }
    return all
  }

  report(): DeliveryReport {
    const byPseudonym = new Map<string, Map<string, string>>()
    const seen = new Map<string, number>()
    let received = 0
    for (const message of this.subscriber.messages) {
      // Either format: one pseudonym per message (records/1) or a release slot's many (records/2).
      for (const record of recordsOf(message.content)) {
        const mine = byPseudonym.get(`${record.epoch}|${record.pseudonym}`) ?? new Map<string, string>()
        byPseudonym.set(`${record.epoch}|${record.pseudonym}`, mine)
        received++
        const delivery = `${record.id}:${record.revision}`
        seen.set(delivery, (seen.get(delivery) ?? 0) + 1)
        mine.set(`${record.type}|${record.start}`, JSON.stringify(record.values))
      }
    }
    const expectedByUser = this.users.map((user) => {
      const window = this.windows.get(user.userId)
      return window === undefined ? new Map<string, string>() : expectedRecords(user, window.first - 24 * HOUR, window.last)
    })
    // Each pseudonym belongs to the one user whose data contains all of its records.
    const matched = new Set<number>()
    let unexpected = 0
    let usersComplete = 0
    for (const records of byPseudonym.values()) {
      const owner = expectedByUser.findIndex(
        (expected, i) => !matched.has(i) && expected.size > 0 && [...records].every(([key, values]) => expected.get(key) === values),
      )
      if (owner === -1) {
        unexpected += records.size
        continue
      }
      matched.add(owner)
      if (records.size === expectedByUser[owner]!.size) usersComplete++
    }
    const distinct = [...byPseudonym.values()].reduce((n, records) => n + records.size, 0)
    return {
      users: this.users.length,
      usersComplete,
      expected: expectedByUser.reduce((n, expected) => n + expected.size, 0),
      received,
      distinct,
      duplicates: [...seen.values()].reduce((n, count) => n + count - 1, 0),
      unexpected,
    }
  }

  /** Waits until every user is complete; then waits `settleMs` more for any duplicate to show. */
  async waitComplete(timeoutMs: number, settleMs = 3_000): Promise<DeliveryReport> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const synced = await this.refreshWindows()
      const report = this.report()
      if (synced && report.usersComplete === report.users) break
      if (Date.now() > deadline) throw new Error(`not every user's data arrived within ${timeoutMs} ms: ${JSON.stringify(report)}`)
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
    await new Promise((resolve) => setTimeout(resolve, settleMs))
    await this.refreshWindows()
    return this.report()
  }
}
