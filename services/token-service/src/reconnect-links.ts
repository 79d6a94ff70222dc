import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { RedisConnection } from '@fitstream/shared'
import { DATA_TYPE_KEYS, type DataTypeKey } from '@fitstream/shared'

export interface ReconnectGrant {
  readonly userId: string
  /** What the user is asked to consent to; their current consent when absent. */
  readonly dataTypes: readonly DataTypeKey[] | undefined
  /** The link's own id: a link is used once. */
  readonly nonce: string
  readonly expiresAt: number
}

/** The query fields of a link, as the link page posts them back. */
export const LINK_FIELDS = ['u', 't', 'e', 'n', 's'] as const

/**
 * Signed links that send a user (whose session may be long gone) back through Google consent for
 * their own account: the reconnect, move and re-consent links the API hands out. A link is short-lived
 * and works once (see LinkUses); whoever opens it must still sign in at Google as the account the user
 * registered with, or the callback refuses the grant (Onboarding), so a leaked link gives nobody else
 * the account, and a person who opens someone else's link cannot put their grant in it.
 */
export class ReconnectLinks {
  constructor(
    private readonly publicUrl: string,
    /** The first secret signs; all verify, so secrets can rotate. */
    private readonly secrets: readonly string[],
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  create(userId: string, dataTypes?: readonly DataTypeKey[]): string {
    const url = new URL(`${this.publicUrl}/reconnect`)
    url.searchParams.set('u', userId)
    if (dataTypes !== undefined) url.searchParams.set('t', dataTypes.join(','))
    url.searchParams.set('e', String(this.now() + this.ttlMs))
    url.searchParams.set('n', randomBytes(16).toString('base64url'))
    url.searchParams.set('s', sign(this.secrets[0]!, url.searchParams))
    return url.toString()
  }

  /** The grant a link carries, or undefined when it is forged, altered or expired. */
  verify(query: Readonly<Record<string, string | undefined>>): ReconnectGrant | undefined {
    const { u, t, e, n, s } = query
    if (u === undefined || e === undefined || n === undefined || s === undefined || !(Number(e) > this.now())) return undefined
    if (!/^[A-Za-z0-9_-]{22}$/.test(n)) return undefined
    const params = new URLSearchParams({ u, ...(t === undefined ? {} : { t }), e, n })
    const presented = Buffer.from(s)
    const valid = this.secrets.some((secret) => {
      const expected = Buffer.from(sign(secret, params))
      return expected.length === presented.length && timingSafeEqual(expected, presented)
    })
    if (!valid) return undefined
    const known = new Set<string>(DATA_TYPE_KEYS)
    const dataTypes = t === undefined ? undefined : t.split(',').filter((k): k is DataTypeKey => known.has(k))
    return { userId: u, dataTypes, nonce: n, expiresAt: Number(e) }
  }
}

/** Which links have been used, until they expire anyway: a link is taken once. */
export class LinkUses {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether the link has been used (a page can say so before anyone presses its button). */
  async used(grant: ReconnectGrant): Promise<boolean> {
    return (await this.redis.exists(this.key(grant))) === 1
  }

  /** Marks the link used; false when it already was. */
  async take(grant: ReconnectGrant): Promise<boolean> {
    const ttlMs = Math.max(1, grant.expiresAt - this.now())
    return (await this.redis.set(this.key(grant), '1', 'PX', ttlMs, 'NX')) === 'OK'
  }

  private key(grant: ReconnectGrant): string {
    return `${this.prefix}:link-used:${grant.nonce}`
  }
}

function sign(secret: string, params: URLSearchParams): string {
  const message = ['u', 't', 'e', 'n'].map((k) => `${k}=${params.get(k) ?? ''}`).join('&')
  return createHmac('sha256', secret).update(`reconnect|${message}`).digest('base64url')
}
