import type { RedisConnection } from '@fitstream/shared'
import { GoogleRateLimitError, classifyGoogleError, type SendToGoogle } from './google-fit.js'
import type { FetcherMetrics } from './metrics.js'

export type { SendToGoogle }

/** The longest a request waits for the project's rate, by default, before its fetch is put back in the queue. */
const MAX_WAIT_MS = 10_000

// Counts one request in the current second of Redis' own clock (so replicas whose clocks differ
// share one window) and answers the count with the ms left in that second.
const TAKE_SCRIPT = `
local now = redis.call('TIME')
if redis.call('HGET', KEYS[1], 's') ~= now[1] then
  redis.call('HSET', KEYS[1], 's', now[1], 'n', 0)
  redis.call('PEXPIRE', KEYS[1], 2000)
end
return {redis.call('HINCRBY', KEYS[1], 'n', 1), 1000 - math.floor(tonumber(now[2]) / 1000)}`

/**
 * Every request any fetcher replica makes to Google, held to `perSecond` for the whole project
 * through one counter per second in Redis. A fetch is one request on the Fitness API but one per
 * type (and more for long windows and further pages) on the Health API, so the limit counts requests,
 * not fetches. A request over the limit waits for the next second and tries again; each wait is
 * counted. One that has waited `maxWaitMs` fails as rate-limited, so its fetch goes back to the
 * queue without using an attempt instead of holding a worker's slot (or a shutdown) any longer.
 */
export class GoogleRequestGate {
  readonly send: SendToGoogle

  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    private readonly perSecond: number,
    private readonly metrics: FetcherMetrics,
    private readonly maxWaitMs = MAX_WAIT_MS,
  ) {
    this.send = async (request) => {
      await this.take()
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
  }

  private async take(): Promise<void> {
    const started = Date.now()
    for (;;) {
      const [count, leftMs] = (await this.redis.eval(TAKE_SCRIPT, 1, `${this.prefix}:google-requests`)) as [number, number]
      if (count <= this.perSecond) return
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
