import type { RedisConnection } from '@fitstream/shared'

export interface GoogleOutageOptions {
  /** Failures within `windowMs` that, outnumbering successes, mean Google is down. */
  readonly threshold: number
  readonly windowMs: number
  /** How long every fetcher holds back once an outage is seen. */
  readonly pauseMs: number
}

// Counts a failure in the current window. Google counts as down when the stage is already paused,
// when an outage was seen lately (the first failure after a pause re-opens it), or when failures
// reach the threshold and outnumber successes. Returns the pause left in ms, or 0.
const FAILED_SCRIPT = `
local failures = redis.call('INCR', KEYS[1])
if failures == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local paused = redis.call('PTTL', KEYS[3])
if paused > 0 then return paused end
local successes = tonumber(redis.call('GET', KEYS[2]) or '0')
if redis.call('EXISTS', KEYS[4]) == 1 or (failures >= tonumber(ARGV[2]) and failures >= successes) then
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
  redis.call('SET', KEYS[4], '1', 'PX', ARGV[4])
  return tonumber(ARGV[3])
end
return 0
`

/**
 * Tells a Google outage from one bad request, across every fetcher replica. While most requests
 * fail with 5xx, timeouts or network errors, the fetch stage pauses and puts its jobs back without
 * using their attempts, so a long outage dead-letters nothing and costs Google a few probes per
 * pause, not a retry storm. A job failing alone still uses an attempt, as the retry policy says.
 */
export class GoogleOutageDetector {
  /** Successes are only counted while this process has seen failures lately: nothing to weigh otherwise. */
  private lastFailureAt = 0

  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    private readonly options: GoogleOutageOptions,
  ) {}

  async succeeded(now = Date.now()): Promise<void> {
    if (now - this.lastFailureAt > this.options.windowMs) return
    const key = `${this.prefix}:google:successes`
    if ((await this.redis.incr(key)) === 1) await this.redis.pexpire(key, this.options.windowMs)
  }

  /** Counts a transient failure; returns how long the stage should pause (0: Google is not down). */
  async failed(now = Date.now()): Promise<number> {
    this.lastFailureAt = now
    const { windowMs, threshold, pauseMs } = this.options
    const pause = await this.redis.eval(
      FAILED_SCRIPT,
      4,
      `${this.prefix}:google:failures`,
      `${this.prefix}:google:successes`,
      `${this.prefix}:google:paused`,
      `${this.prefix}:google:outage-seen`,
      String(windowMs),
      String(threshold),
      String(pauseMs),
      String(pauseMs * 4),
    )
    return Number(pause)
  }
}
