import { AccessTokenUnavailableError, UserGoneError, UserPausedError } from '@fitstream/shared'

/** Asks the token service to refresh a user's access token; the token itself is then read from Redis. */
export class TokenServiceClient {
  constructor(
    private readonly baseUrl: string,
    private readonly internalToken: string,
    private readonly timeoutMs = 20_000,
  ) {}

  async refreshAccessToken(userId: string): Promise<void> {
    let response: Response
    try {
      response = await fetch(new URL(`/internal/users/${encodeURIComponent(userId)}/access-token/refresh`, this.baseUrl), {
        method: 'POST',
        headers: { authorization: `Bearer ${this.internalToken}` },
        signal: AbortSignal.timeout(this.timeoutMs),
      })
    } catch (error) {
      throw new AccessTokenUnavailableError(`token service unreachable: ${error instanceof Error ? error.message : String(error)}`)
    }
    if (response.ok) return
    const body = (await response.json().catch(() => ({}))) as { message?: unknown }
    const detail = typeof body.message === 'string' ? body.message : `HTTP ${response.status}`
    if (response.status === 404) throw new UserGoneError(`user ${userId} no longer exists`)
    if (response.status === 409) throw new UserPausedError(`user ${userId} must reconnect Google: ${detail}`)
    throw new AccessTokenUnavailableError(`token service could not refresh the access token: ${detail}`)
  }

  /**
   * Tells the token service, which keeps the person's zone, the one Google now says they are in:
   * their next sync's daily windows are laid out in it. Answers whether it was recorded (not when
   * the token service is unreachable, refuses it or no longer has the person); the next fetch tells it again.
   */
  async recordTimeZone(userId: string, timeZone: string): Promise<boolean> {
    try {
      const response = await fetch(new URL(`/internal/users/${encodeURIComponent(userId)}/time-zone`, this.baseUrl), {
        method: 'PUT',
        headers: { authorization: `Bearer ${this.internalToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ timeZone }),
        signal: AbortSignal.timeout(this.timeoutMs),
      })
      await response.body?.cancel()
      return response.ok
    } catch {
      return false
    }
  }
}
