import type { EarningsOnErasure } from './earnings-membership.js'
import type { RevocationOutcome } from './google-oauth.js'
import type { SyncScheduler } from './scheduler.js'
import type { SessionStore } from './sessions.js'
import type { JobRecall, UserJobs } from './user-jobs.js'
import type { UserRepository } from './users.js'

/** A store that keeps state of a person's and deletes it when asked; answers how many keys it deleted. */
export interface UserStateOwner {
  erase(userId: string): Promise<number>
}

export interface ErasureDeps {
  readonly users: UserRepository
  /**
   * The other stores holding per-user state (the privacy ledger, the fetch history, the refresh
   * lock, the import ledger): each erases its own, and the receipt counts them as privacy state.
   */
  readonly userState: readonly UserStateOwner[]
  readonly scheduler: SyncScheduler
  readonly sessions: SessionStore
  readonly jobs: UserJobs
  /** Revokes the user's grant at Google. */
  readonly revoke: (refreshToken: string) => Promise<RevocationOutcome>
  readonly now?: () => number
  /** When jobs of the person's were running, how long after the erasure the anonymiser is asked again (default 2 minutes). */
  readonly cohortMopUpDelayMs?: number
  /** Settles the person's Data Union earnings (earnings-membership.ts): pays out to `payTo` first, leaves the Data Union. */
  readonly earnings?: (userId: string, payTo?: string) => Promise<EarningsOnErasure | undefined>
  /** The person's passkeys (passkey-store.ts), when the service offers them. */
  readonly passkeys?: { eraseAllOf(userId: string): Promise<number> }
}

export type GoogleAccess = 'revoked' | 'already_revoked' | 'not_revoked' | 'no_token'

/** What one owner of the person's data did with it. */
export interface OwnerOutcome {
  /** `token-service`: account, tokens, jobs; `anonymizer`: open cohort cells; `google`: the grant; `published`: what buyers have. */
  readonly owner: 'token-service' | 'anonymizer' | 'google' | 'published'
  readonly outcome: 'deleted' | 'queued_for_removal' | 'not_queued' | GoogleAccess | 'cannot_be_recalled'
  /** The same in plain words, for the person. */
  readonly detail: string
}

export interface ErasureReceipt {
  readonly id: string
  readonly erasedAt: string
  readonly erased: {
    readonly account: boolean
    readonly tokens: boolean
    readonly syncCursor: boolean
    readonly consent: boolean
    readonly schedule: boolean
    /** Keys of per-user privacy state (budgets, cohort membership) and fetch history deleted. */
    readonly privacyState: number
    readonly sessions: number
    /** Passkeys deleted (absent where passkeys are not offered). */
    readonly passkeys?: number
    /** Pending, failed and dead-lettered jobs removed, per queue. */
    readonly jobs: Record<string, number>
  }
  readonly googleAccess: GoogleAccess
  readonly notRecalled: {
    /** Jobs a worker was running, per queue: they find the user gone and discard their work. */
    readonly runningJobs: Record<string, number>
    readonly explanation: string
  }
  readonly note: string
  /** What each owner of the person's data did, in the order it was done. */
  readonly byOwner: readonly OwnerOutcome[]
  /** Their Data Union earnings: what was paid out, what is left and how to claim it (absent when they never joined). */
  readonly earnings?: EarningsOnErasure | { readonly notSettled: string }
}

export const PUBLISHED_NOTE =
  'Pseudonymised records already published to Streamr, and any copies buyers received or stored, cannot be recalled: they carry a monthly pseudonym, not your name or account. Cohort rows already published are noisy averages over many people and cannot be recalled either.'

const GOOGLE_DETAIL: Record<GoogleAccess, string> = {
  revoked: 'FitStream’s access to your Google data was revoked at Google.',
  already_revoked: 'Google had already ended FitStream’s access.',
  not_revoked:
    'Google could not be reached to revoke FitStream’s access; the token is deleted here, and you can remove FitStream at myaccount.google.com/permissions.',
  no_token: 'There was no Google access to revoke.',
}

/**
 * Forgets a user: revokes their grant at Google, then deletes their record (tokens, cursor,
 * consent), schedule, privacy state, sessions and every job that names them, asks the anonymiser to
 * take them out of open cohort cells, and says what each owner did and what could not be recalled.
 * Undefined when there was no such user.
 */
export async function eraseUser(deps: ErasureDeps, userId: string, options: { readonly payTo?: string } = {}): Promise<ErasureReceipt | undefined> {
  const now = deps.now ?? Date.now
  const user = await deps.users.get(userId)
  const refreshToken = await deps.users.refreshToken(userId).catch(() => undefined)
  const schedule = await deps.scheduler.unschedule(userId)
  if (user === undefined && !schedule) return undefined

  const googleAccess = await revokeAtGoogle(deps, refreshToken)
  // Money before the account goes: a failure here leaves the member key with the membership service, so nothing is burnt.
  const earnings =
    deps.earnings === undefined
      ? undefined
      : await deps.earnings(userId, options.payTo).catch((error: unknown) => ({
          notSettled: `Your earnings could not be settled just now and stay in the Data Union (${error instanceof Error ? error.message : String(error)}); contact the operator with your account id to have them paid.`,
        }))
  // The record goes first, so no worker starts new work for the user while the queues are swept.
  const account = await deps.users.delete(userId)
  let privacyState = 0
  for (const owner of deps.userState) privacyState += await owner.erase(userId)
  const sessions = await deps.sessions.destroyAllOf(userId)
  const passkeys = await deps.passkeys?.eraseAllOf(userId)
  const recall: JobRecall = await deps.jobs.recall(userId)
  const running = Object.values(recall.running).reduce((a, b) => a + b, 0)
  // After the recall, so no queued anonymize job adds a contribution after the anonymiser took them out.
  const cohorts = await deps.jobs.requestCohortErasure(userId).then(
    () => 'queued_for_removal' as const,
    () => 'not_queued' as const,
  )
  // A job that was running may still have handed the anonymiser their data: asked again once it is done.
  if (running > 0 && cohorts === 'queued_for_removal') await deps.jobs.requestCohortErasure(userId, deps.cohortMopUpDelayMs ?? 120_000).catch(() => undefined)
  const jobs = Object.values(recall.removed).reduce((a, b) => a + b, 0)
  return {
    id: userId,
    erasedAt: new Date(now()).toISOString(),
    erased: {
      account,
      tokens: account,
      syncCursor: account,
      consent: account,
      schedule,
      privacyState,
      sessions,
      ...(passkeys === undefined ? {} : { passkeys }),
      jobs: recall.removed,
    },
    googleAccess,
    notRecalled: {
      runningJobs: recall.running,
      explanation:
        running === 0
          ? 'No job for this user was running.'
          : `${running} job(s) were running and could not be removed safely; each finds the user gone and discards its work without passing data on.`,
    },
    note: PUBLISHED_NOTE,
    byOwner: [
      {
        owner: 'token-service',
        outcome: 'deleted',
        detail: `Your account, Google tokens, choices, sync position and schedule, ${sessions} session(s), ${passkeys === undefined ? '' : `${passkeys} passkey(s), `}${privacyState} item(s) of privacy state and ${jobs} pending job(s) were deleted.`,
      },
      {
        owner: 'anonymizer',
        outcome: cohorts,
        detail:
          cohorts === 'queued_for_removal'
            ? 'Your contributions to cohort averages not yet published are queued for removal: no cohort published from now on counts you.'
            : 'Your contributions to cohort averages not yet published could not be queued for removal just now, so they may still count in averages published later.',
      },
      { owner: 'google', outcome: googleAccess, detail: GOOGLE_DETAIL[googleAccess] },
      { owner: 'published', outcome: 'cannot_be_recalled', detail: PUBLISHED_NOTE },
    ],
    ...(earnings === undefined ? {} : { earnings }),
  }
}

async function revokeAtGoogle(deps: ErasureDeps, refreshToken: string | undefined): Promise<GoogleAccess> {
  if (refreshToken === undefined) return 'no_token'
  try {
    return (await deps.revoke(refreshToken)) === 'revoked' ? 'revoked' : 'already_revoked'
  } catch {
    // Erasure must not wait on Google: the token is deleted here either way, and the receipt says so.
    return 'not_revoked'
  }
}
