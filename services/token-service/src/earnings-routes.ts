import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Logger } from '@fitstream/shared'
import { adminOrOwner } from './auth.js'
import { messagePage } from './html.js'
import { memberRefOf, type EarningsHistory, type EarningsReport, type MembershipClient, type MemberEarnings } from './earnings.js'
import type { SessionCookies } from './session-http.js'
import type { UserRepository } from './users.js'

export interface EarningsDeps {
  readonly membership: MembershipClient
  readonly history: EarningsHistory
  /** MEMBER_REF_KEY: how account ids become the membership service's references. */
  readonly refKey: Buffer
  readonly now: () => Date
  readonly logger: Logger
}

export class EarningsNotAvailable extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message)
  }
}

/** A person's earnings with their history; records today's total for the chart. */
export async function readEarnings(deps: EarningsDeps, userId: string): Promise<EarningsReport> {
  const answer = await deps.membership.earnings(memberRefOf(userId, deps.refKey))
  if (answer.status !== 200) {
    const body = answer.body as { code?: string; message: string }
    throw new EarningsNotAvailable(answer.status, body.code, body.message)
  }
  const earnings = answer.body as MemberEarnings
  const history = earnings.address === null ? [] : await deps.history.record(userId, earnings.total, deps.now())
  return { ...earnings, history }
}

/** For the account page: the earnings, or nothing (the page still shows) when they can't be read now. */
export function earningsForPage(deps: EarningsDeps): (userId: string) => Promise<EarningsReport | undefined> {
  return (userId) =>
    readEarnings(deps, userId).catch((err: unknown) => {
      deps.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'earnings could not be read for the account page')
      return undefined
    })
}

const params = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{8,64}$' } } } as const

/** `GET /users/:id/earnings`: for apps, what the account page shows. */
export async function earningsRoutes(
  app: FastifyInstance,
  deps: EarningsDeps & { readonly users: UserRepository; readonly sessions: SessionCookies; readonly adminToken: string },
): Promise<void> {
  const ownerCheck = adminOrOwner(deps.adminToken, deps.sessions)
  app.get<{ Params: { id: string } }>(
    '/users/:id/earnings',
    {
      onRequest: ownerCheck,
      schema: {
        tags: ['users'],
        summary: "The person's earnings from the product's Data Union: withdrawable and total in token units, the fees, and a daily history",
        params,
      },
    },
    async (request, reply) => {
      if ((await deps.users.get(request.params.id)) === undefined) return reply.status(404).send({ error: 'Not Found', message: 'no such user' })
      try {
        return await readEarnings(deps, request.params.id)
      } catch (error) {
        if (error instanceof EarningsNotAvailable) {
          const status = error.status >= 500 ? 503 : error.status
          return reply.status(status).send({ error: 'Earnings unavailable', ...(error.code === undefined ? {} : { code: error.code }), message: error.message })
        }
        deps.logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'the membership service did not answer')
        return reply
          .status(503)
          .send({ error: 'Earnings unavailable', code: 'FST_ERR_CHAIN_UNAVAILABLE', message: 'earnings cannot be read just now; try again later' })
      }
    },
  )

  const page = (reply: FastifyReply, status: number, body: string) =>
    reply
      .status(status)
      .header('cache-control', 'no-store')
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .type('text/html; charset=utf-8')
      .send(body)
  const back = { href: '/account', text: 'Your account' }
  app.post<{ Body: { to?: string; csrf?: string } }>(
    '/account/earnings/withdraw',
    {
      schema: {
        tags: ['pages'],
        summary: 'The account page’s withdrawal: everything withdrawable, to the address given, the operator paying the fee',
        body: { type: 'object', properties: { to: { type: 'string', maxLength: 64 }, csrf: { type: 'string', maxLength: 128 } } },
      },
    },
    async (request, reply) => {
      const session = await deps.sessions.current(request)
      if (session?.userId === undefined) return page(reply, 401, messagePage('You are not signed in', 'Sign in again to withdraw your earnings.', back))
      if (!deps.sessions.checkFormToken(request, request.body.csrf)) {
        return page(reply, 403, messagePage('The form has expired', 'Nothing was paid. Open your account page and try again.', back))
      }
      try {
        const answer = await deps.membership.withdraw(memberRefOf(session.userId, deps.refKey), request.body.to ?? '')
        if (answer.status === 200) {
          const paid = answer.body as { amount: string; to: string; token: string }
          return page(reply, 200, messagePage('Your earnings are on their way', `${paid.amount} ${paid.token} were paid to ${paid.to}.`, back))
        }
        const refused = answer.body as { code?: string; message: string }
        const words: Record<string, string> = {
          FST_ERR_INVALID_ADDRESS: 'That address is not valid (check it for typos: the mix of capital and small letters is a checksum). Nothing was paid.',
          FST_ERR_NOTHING_TO_WITHDRAW: 'There is nothing to withdraw yet. Earnings appear after the product is sold.',
        }
        const text = words[refused.code ?? ''] ?? 'The payment could not be made just now. Nothing was paid; please try again later.'
        return page(reply, answer.status >= 500 ? 503 : answer.status, messagePage('Nothing was paid', text, back, refused.code))
      } catch {
        return page(
          reply,
          503,
          messagePage('Nothing was paid', 'The payment could not be made just now. Please try again later.', back, 'FST_ERR_CHAIN_UNAVAILABLE'),
        )
      }
    },
  )
}
