import { createHmac } from 'node:crypto'
import type { RedisConnection } from '@fitstream/shared'

/** A person's earnings as the membership service reports them: decimal strings in token units. */
export interface MemberEarnings {
  readonly address: string | null
  readonly isMember: boolean
  readonly withdrawable: string
  readonly total: string
  readonly withdrawn: string
  readonly token: string
  /** Fractions, e.g. "0.1". */
  readonly adminFee: string
  readonly protocolFee: string
}

export interface EarningsPoint {
  /** UTC day, YYYY-MM-DD. */
  readonly day: string
  /** Total earned by then, in token units. */
  readonly total: string
}

export interface EarningsReport extends MemberEarnings {
  /** One point a UTC day on which the earnings were read, oldest first: the chart on the account page. */
  readonly history: readonly EarningsPoint[]
}

/**
 * How the membership service knows a person: a keyed hash of their account id (MEMBER_REF_KEY), so
 * the service that holds member addresses and keys never holds account ids.
 */
export function memberRefOf(userId: string, key: Buffer): string {
  return createHmac('sha256', key).update(`member:${userId}`).digest('base64url').slice(0, 32)
}

/** The membership service's /internal/members API (services/publisher/src/data-union-routes.ts). */
export class MembershipClient {
  constructor(
    private readonly baseUrl: string,
    private readonly internalToken: string,
    private readonly timeoutMs = 15_000,
  ) {}

  private async call<T>(method: string, path: string, body?: object): Promise<{ status: number; body: T }> {
    const response = await fetch(new URL(path, this.baseUrl), {
      method,
      headers: { authorization: `Bearer ${this.internalToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(this.timeoutMs),
    })
    return { status: response.status, body: (await response.json()) as T }
  }

  earnings(ref: string): Promise<{ status: number; body: MemberEarnings | { code?: string; message: string } }> {
    return this.call('GET', `/internal/members/${encodeURIComponent(ref)}/earnings`)
  }

  ensureMember(ref: string, ownAddress?: string): Promise<{ status: number; body: { address: string; kind: string } | { code?: string; message: string } }> {
    return this.call('PUT', `/internal/members/${encodeURIComponent(ref)}`, ownAddress === undefined ? {} : { address: ownAddress })
  }

  withdraw(ref: string, to: string): Promise<{ status: number; body: { amount: string; to: string; token: string } | { code?: string; message: string } }> {
    return this.call('POST', `/internal/members/${encodeURIComponent(ref)}/withdrawals`, { to })
  }

  erase(ref: string, payTo?: string): Promise<{ status: number; body: Record<string, unknown> }> {
    return this.call('POST', `/internal/members/${encodeURIComponent(ref)}/erasure`, payTo === undefined ? {} : { payTo })
  }
}

const HISTORY_DAYS = 400

/** The token service's record of a person's total earnings per UTC day, for the chart. Erased with the account. */
export class EarningsHistory {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  private key(userId: string): string {
    return `${this.prefix}:token-service:earnings-history:${userId}`
  }

  /** Records today's total (the latest read of the day wins) and returns the history, oldest first. */
  async record(userId: string, total: string, now: Date): Promise<EarningsPoint[]> {
    const day = now.toISOString().slice(0, 10)
    const key = this.key(userId)
    await this.redis.hset(key, day, total)
    const all = await this.redis.hgetall(key)
    const days = Object.keys(all).sort()
    if (days.length > HISTORY_DAYS) await this.redis.hdel(key, ...days.slice(0, days.length - HISTORY_DAYS))
    return days.slice(-HISTORY_DAYS).map((d) => ({ day: d, total: all[d]! }))
  }

  async erase(userId: string): Promise<void> {
    await this.redis.del(this.key(userId))
  }
}
