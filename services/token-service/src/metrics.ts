import type { Counter } from 'prom-client'
import { ReauthRequiredError, metricBuilder, type ServiceMetrics } from '@fitstream/shared'
import type { UserRepository } from './users.js'

/** What the token service reports beyond the job metrics every stage has. */
export interface TokenServiceMetrics {
  readonly tokenRefreshes: Counter<'outcome'>
  /** Requests refused for security reasons (a link, an account, a rate limit, a failed authentication), by catalogue code. */
  readonly refusals: Counter<'code'>
  /** Counts one refresh at Google by how it ended, and passes the result through. */
  countRefresh<T>(refresh: Promise<T>): Promise<T>
  /** Samples the user counts (called at scrape time). */
  sampleUsers(): Promise<void>
}

export function createTokenServiceMetrics(metrics: ServiceMetrics, users: UserRepository): TokenServiceMetrics {
  const { counter, gauge } = metricBuilder(metrics.registry)
  const tokenRefreshes = counter(
    'fitstream_token_refreshes_total',
    "Access-token refreshes at Google's token endpoint, by outcome (ok, reauth_required, error)",
    ['outcome'],
  )
  const refusals = counter(
    'fitstream_token_refusals_total',
    'Requests the token service refused to protect accounts (links, Google accounts, rate limits, authentication), by error code',
    ['code'],
  )
  const usersByState = gauge('fitstream_users', 'Registered users, by state (sampled at scrape time)', ['state'])
  return {
    tokenRefreshes,
    refusals,
    countRefresh: async (refresh) => {
      try {
        const result = await refresh
        tokenRefreshes.inc({ outcome: 'ok' })
        return result
      } catch (error) {
        tokenRefreshes.inc({ outcome: error instanceof ReauthRequiredError ? 'reauth_required' : 'error' })
        throw error
      }
    },
    sampleUsers: async () => {
      const counts = await users.counts()
      usersByState.set({ state: 'active' }, counts.total - counts.reauth_required - counts.move_required)
      usersByState.set({ state: 'reauth_required' }, counts.reauth_required)
      usersByState.set({ state: 'move_required' }, counts.move_required)
    },
  }
}
