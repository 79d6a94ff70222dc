import { createHash } from 'node:crypto'
import {
  GOOGLE_DATA_API_NAMES,
  ReauthRequiredError,
  UserGoneError,
  dataApiOfScopes,
  isClosed,
  type GoogleDataApi,
  type JobContext,
  type StageData,
  type StageQueues,
} from '@fitstream/shared'
import type { AccessTokenKeeper } from './access-tokens.js'
import type { SyncScheduler } from './scheduler.js'
import { planFetchWindows, type SyncPlanOptions } from './sync-planner.js'
import type { UserRepository } from './users.js'

export interface SyncResult {
  readonly syncId: string
  readonly status: 'planned' | 'up_to_date' | 'paused'
  readonly fetchJobs: number
}

export interface SyncProcessorDeps {
  readonly users: UserRepository
  readonly tokens: AccessTokenKeeper
  readonly scheduler: SyncScheduler
  readonly queues: StageQueues
  readonly plan: SyncPlanOptions
  /** The API new grants are for, and of users whose grant's API is not known. */
  readonly api: GoogleDataApi
  /** When Google shuts the Fitness API down (ms). */
  readonly fitClosesAt: number
  readonly now?: () => number
  /** Joins the person to the product's Data Union once their data has been released (earnings-membership.ts). */
  readonly enrolment?: { afterSync(userId: string): Promise<unknown> }
}

/**
 * A user's sync: make sure their access token is fresh, then hand the fetchers one job per window
 * of new data. Fetch job ids are derived from the user and window, so a retried or overlapping
 * sync never fetches the same window twice.
 */
export function createSyncProcessor(deps: SyncProcessorDeps) {
  const now = deps.now ?? Date.now
  return async (data: StageData<'sync'>, context: JobContext): Promise<SyncResult> => {
    // Opaque, so the id that follows a sync through the pipeline says nothing about the user.
    const syncId = createHash('sha256').update(context.jobId).digest('base64url').slice(0, 16)
    const user = await deps.users.forSync(data.userId)
    if (user === undefined) throw new UserGoneError(`user ${data.userId} no longer exists`)
    if (user.state !== 'active') {
      context.logger.info({ state: user.state }, 'sync skipped: user is not active')
      return { syncId, status: 'paused', fetchJobs: 0 }
    }
    const api = dataApiOfScopes(user.scopes, deps.api)
    if (isClosed(api, now(), deps.fitClosesAt)) {
      // Not a pipeline failure either: every fetch would fail until the person moves to the Health API.
      const message = `${GOOGLE_DATA_API_NAMES.fit} closed on ${new Date(deps.fitClosesAt).toISOString()}: ${
        deps.api === 'health'
          ? `the user must move to the ${GOOGLE_DATA_API_NAMES.health} (links.move, or their account page)`
          : `this deployment still reads people from it; set GOOGLE_DATA_API=health, then have them move`
      }`
      // Unless they moved (or changed consent) since they were read: then their schedule stays.
      const paused = await deps.users.setState(user.id, 'move_required', {
        lastError: message,
        onlyIf: { state: 'active', consentUpdatedAt: user.consentUpdatedAt },
      })
      if (paused) {
        await deps.scheduler.unschedule(user.id)
        // A grant that came in between the pause and the unschedule made them active and scheduled them: keep it.
        if ((await deps.users.get(user.id))?.state === 'active') await deps.scheduler.schedule(user.id)
        await deps.users.recordSync(user.id, now(), 'move_required')
        context.logger.warn({ userId: user.id }, 'user is still on Google Fit, which has closed: syncs paused until they move')
      }
      return { syncId, status: 'paused', fetchJobs: 0 }
    }
    try {
      // A token read fresh just now needs nothing more: the fetcher decrypts it when it uses it.
      if (!deps.tokens.isFresh(user.accessTokenExpiresAt)) await deps.tokens.ensureFresh(user.id, { stale: true })
    } catch (error) {
      if (!(error instanceof ReauthRequiredError)) throw error
      // Not a pipeline failure: the user has to consent again. Pause instead of retrying or dead-lettering.
      await deps.users.setState(user.id, 'reauth_required', { lastError: error.message })
      await deps.scheduler.unschedule(user.id)
      await deps.users.recordSync(user.id, now(), 'reauth_required')
      context.logger.warn({ userId: user.id }, 'refresh token refused: user needs to reconnect; syncs paused')
      return { syncId, status: 'paused', fetchJobs: 0 }
    }
    const planned = planFetchWindows({ fetchedUntil: user.fetchedUntil, backfillEnd: user.backfill?.end, timeZone: user.timeZone }, now(), deps.plan)
    const backfill = planned.filter((p) => p.kind === 'backfill')
    if (backfill.length > 0) await deps.users.recordBackfillPlan(user.id, backfill.length, backfill[0]!.window.endMs)
    await deps.queues.addBulk(
      'fetch',
      planned.map(({ window, kind, chunk }) => ({
        data: {
          syncId,
          userId: user.id,
          dataTypes: [...user.dataTypes],
          window,
          bucketMs: deps.plan.bucketMs,
          timeZone: user.timeZone,
          lookbackMs: deps.plan.lookbackMs,
          kind,
          ...(chunk === undefined ? {} : { chunk }),
          // Only what they still sell: an opt-in outlives a later narrowing of consent.
          individualTypes: user.individualTypes.filter((type) => user.dataTypes.includes(type)),
        },
        options: {
          jobId: `fetch-${user.id}-${window.startMs}-${window.endMs}`,
          // Backfill yields to everyone's regular syncs; its chunks show in Bull Board as "backfill 3/30".
          ...(chunk === undefined ? {} : { name: `backfill ${chunk.index}/${chunk.of}`, priority: 10 }),
        },
      })),
    )
    await deps.users.recordSync(user.id, now(), planned.length > 0 ? 'fetching' : 'up_to_date')
    // Never holds up the sync: a person not enrolled now is enrolled at a later sync.
    await deps.enrolment
      ?.afterSync(user.id)
      .catch((err: unknown) =>
        context.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'Data Union enrolment failed; retried at the next sync'),
      )
    context.logger.info({ syncId, userId: user.id, windows: planned.length, backfill: backfill.length }, 'sync planned')
    return { syncId, status: planned.length > 0 ? 'planned' : 'up_to_date', fetchJobs: planned.length }
  }
}

export interface ReopenDeps {
  readonly users: UserRepository
  readonly scheduler: SyncScheduler
  readonly api: GoogleDataApi
  readonly fitClosesAt: number
  readonly now?: () => number
}

/**
 * People paused as `move_required` whose API is open after all (GOOGLE_FIT_CLOSES_AT moved later
 * because Google kept Fit longer) become active and scheduled again; their next sync catches up from
 * their cursor. Answers how many. Run when the token service starts, which a changed setting needs.
 */
export async function resumeReopened(deps: ReopenDeps): Promise<number> {
  const now = (deps.now ?? Date.now)()
  // Only the Fitness API closes: while it is closed, nobody paused for it can be resumed, so the walk is skipped.
  if (isClosed('fit', now, deps.fitClosesAt)) return 0
  let [cursor, resumed] = ['0', 0]
  do {
    const page = await deps.users.page(cursor, 500, 'move_required')
    for (const user of page.users) {
      if (user.state !== 'move_required' || isClosed(dataApiOfScopes(user.scopes, deps.api), now, deps.fitClosesAt)) continue
      // Scheduled first: a crash before the state changes leaves them paused and findable here next time.
      await deps.scheduler.schedule(user.id)
      if (await deps.users.setState(user.id, 'active', { lastError: null, onlyIf: { state: 'move_required' } })) resumed++
      else if ((await deps.users.get(user.id))?.state !== 'active') await deps.scheduler.unschedule(user.id)
    }
    cursor = page.cursor
  } while (cursor !== '0')
  return resumed
}
