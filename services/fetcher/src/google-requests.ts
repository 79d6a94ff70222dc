import type { RedisConnection } from '@fitstream/shared'
import { GoogleRateLimitError, classifyGoogleError, type ReserveGoogleRequests, type SendToGoogle } from './google-fit.js'
import type { FetcherMetrics } from './metrics.js'

export type { ReserveGoogleRequests, SendToGoogle }

/** The longest a request waits for the project's rate, by default, before its fetch is put back in the queue. */
const MAX_WAIT_MS = 10_000

// Takes up to ARGV[1] of the ARGV[2] requests of the current second of Redis' own clock (so replicas
// whose clocks differ share one window), and answers how many it took with the ms left in that second.
const TAKE_SCRIPT = `
local now = redis.call('TIME')
if redis.call('HGET', KEYS[1], 's') ~= now[1] then
  redis.call('HSET', KEYS[1], 's', now[1], 'n', 0)
  redis.call('PEXPIRE', KEYS[1], 2000)
end
local taken = math.max(0, math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - tonumber(redis.call('HGET', KEYS[1], 'n'))))
if taken > 0 then redis.call('HINCRBY', KEYS[1], 'n', taken) end
return {taken, 1000 - math.floor(tonumber(now[2]) / 1000)}`

/**
 * Every request any fetcher replica makes to Google, held to `perSecond` for the whole project
 * through one counter per second in Redis. A fetch is one request on the Fitness API but one per
 * type (and more for long windows and further pages) on the Health API, so the limit counts requests,
 * not fetches. A request over the limit waits for the next second and tries again; each wait is
 * counted. One that has waited `maxWaitMs` fails as rate-limited, so its fetch goes back to the
 * queue without using an attempt instead of holding a worker's slot (or a shutdown) any longer.
 * Requests that go out together (a Health API fetch's, one per type) take their share in one call.
 */
export class GoogleRequestGate {
  readonly send: SendToGoogle
  /** Takes up to `count` requests at once without waiting; what it could not take, each request waits for as `send` does. */
  readonly reserve: ReserveGoogleRequests

  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    private readonly perSecond: number,
    private readonly metrics: FetcherMetrics,
    private readonly maxWaitMs = MAX_WAIT_MS,
  ) {
    this.send = async (request) => {
      await this.take()
      return this.timed(request)
    }
    this.reserve = async (count) => {
      let left = (await this.takeUpTo(count))[0]
      return (request) => (left-- > 0 ? this.timed(request) : this.send(request))
    }
  }

  /** Sends a request whose share of the limit is taken, timed and counted. */
  private async timed<T>(request: () => Promise<T>): Promise<T> {
    const stop = this.metrics.googleLatency.startTimer()
    try {
      const response = await request()
      this.metrics.googleRequests.inc({ status: '200' })
      return response
    } catch (error) {
      this.metrics.googleRequests.inc({ status: statusOf(error) })
      throw error
    } finally {
      stop()
    }
  }

  /** How many of `count` requests this second still had room for (taken now), and the ms left in the second. */
  private async takeUpTo(count: number): Promise<[taken: number, leftMs: number]> {
    return (await this.redis.eval(TAKE_SCRIPT, 1, `${this.prefix}:google-requests`, String(count), String(this.perSecond))) as [number, number]
  }

  private async take(): Promise<void> {
    const started = Date.now()
    for (;;) {
      const [taken, leftMs] = await this.takeUpTo(1)
      if (taken === 1) return
      this.metrics.googleThrottled.inc()
      if (Date.now() - started >= this.maxWaitMs) {
        throw new GoogleRateLimitError(`GOOGLE_RATE_LIMIT_PER_SECOND (${this.perSecond}) stayed used up for ${this.maxWaitMs / 1000} s`, 1_000, 429)
      }
      // A little spread, so the requests held back do not all come at once at the turn of the second.
      await new Promise((resolve) => setTimeout(resolve, leftMs + Math.floor(Math.random() * 50)))
    }
  }
}

/** The status Google answered (read as the clients classify it), or `network` when none came back. */
function statusOf(error: unknown): string {
  return String(classifyGoogleError(error).status ?? 'network')
}
