import { createHmac, timingSafeEqual } from 'node:crypto'
import { DATA_TYPE_KEYS, type DataTypeKey } from '@fitstream/shared'

export interface ReconnectGrant {
  readonly userId: string
  /** What the user is asked to consent to; their current consent when absent. */
  readonly dataTypes: readonly DataTypeKey[] | undefined
}

const LINK_TTL_MS = 7 * 86_400_000

/**
 * Signed, expiring links that send a user (whose session may be long gone) back through Google
 * consent for their own account: the re-consent link the API hands out for `reauth_required`.
 */
export class ReconnectLinks {
  constructor(
    private readonly publicUrl: string,
    /** The first secret signs; all verify, so secrets can rotate. */
    private readonly secrets: readonly string[],
    private readonly now: () => number = Date.now,
  ) {}

  create(userId: string, dataTypes?: readonly DataTypeKey[]): string {
    const url = new URL(`${this.publicUrl}/reconnect`)
    url.searchParams.set('u', userId)
    if (dataTypes !== undefined) url.searchParams.set('t', dataTypes.join(','))
    url.searchParams.set('e', String(this.now() + LINK_TTL_MS))
    url.searchParams.set('s', sign(this.secrets[0]!, url.searchParams))
    return url.toString()
  }

  /** The grant a link carries, or undefined when it is forged, altered or expired. */
  verify(query: Readonly<Record<string, string | undefined>>): ReconnectGrant | undefined {
    const { u, t, e, s } = query
    if (u === undefined || e === undefined || s === undefined || !(Number(e) > this.now())) return undefined
    const params = new URLSearchParams({ u, ...(t === undefined ? {} : { t }), e })
    const presented = Buffer.from(s)
    const valid = this.secrets.some((secret) => {
      const expected = Buffer.from(sign(secret, params))
      return expected.length === presented.length && timingSafeEqual(expected, presented)
    })
    if (!valid) return undefined
    const known = new Set<string>(DATA_TYPE_KEYS)
    const dataTypes = t === undefined ? undefined : t.split(',').filter((k): k is DataTypeKey => known.has(k))
    return { userId: u, dataTypes }
  }
}

function sign(secret: string, params: URLSearchParams): string {
  const message = ['u', 't', 'e'].map((k) => `${k}=${params.get(k) ?? ''}`).join('&')
  return createHmac('sha256', secret).update(`reconnect|${message}`).digest('base64url')
}
