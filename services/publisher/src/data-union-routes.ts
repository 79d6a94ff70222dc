import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { formatUnits } from 'ethers'
import { FitStreamError } from '@fitstream/shared'
import type { DataUnionChain } from './data-union.js'
import type { MemberWallets } from './member-wallets.js'

/**
 * The membership service's internal API, for the token service (which owns people's accounts and
 * pages): a person's member address, their earnings, a withdrawal, and erasure with its receipt.
 * A person is named by the reference the token service chooses (never their account id). Amounts
 * are decimal strings in token units; keys never leave the service.
 */
export interface DataUnionRoutesOptions {
  readonly wallets: MemberWallets
  readonly chain: DataUnionChain
  readonly dataUnion: string
  /** INTERNAL_API_TOKEN: the bearer token the token service sends. */
  readonly internalToken: string
}

const STATUS: Record<string, number> = {
  FST_ERR_INVALID_ADDRESS: 400,
  FST_ERR_INVALID_PAYLOAD: 400,
  FST_ERR_NOTHING_TO_WITHDRAW: 409,
  FST_ERR_CHAIN_REVERTED: 502,
  FST_ERR_CHAIN_UNAVAILABLE: 503,
  FST_ERR_NOT_A_DATA_UNION: 502,
}

const ref = { type: 'object', required: ['ref'], properties: { ref: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,40}$' } } } as const

export function registerDataUnionRoutes(app: FastifyInstance, options: DataUnionRoutesOptions): void {
  const expected = Buffer.from(`Bearer ${options.internalToken}`)
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/internal/')) return
    const given = Buffer.from(request.headers.authorization ?? '')
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      await reply.status(401).send({ error: 'Unauthorized', message: 'a valid internal bearer token is required' })
    }
  })

  const fail = (reply: FastifyReply, error: unknown): FastifyReply => {
    if (error instanceof FitStreamError && STATUS[error.code] !== undefined) {
      return reply.status(STATUS[error.code]!).send({ error: error.name, code: error.code, message: error.message })
    }
    throw error
  }
  let token: Promise<{ symbol: string; decimals: number; adminFee: string; protocolFee: string }> | undefined
  const tokenInfo = () => {
    token ??= options.chain.status(options.dataUnion).then(
      (s) => ({ symbol: s.token.symbol, decimals: s.token.decimals, adminFee: s.adminFee, protocolFee: s.protocolFee }),
      (error: unknown) => {
        token = undefined
        throw error
      },
    )
    return token
  }

  app.put<{ Params: { ref: string }; Body: { address?: string } }>(
    '/internal/members/:ref',
    {
      schema: {
        params: ref,
        body: { type: 'object', additionalProperties: false, properties: { address: { type: 'string', maxLength: 64 } } },
      },
    },
    async (request, reply) => {
      try {
        const record = await options.wallets.ensure(request.params.ref, request.body?.address)
        return { address: record.address, kind: record.kind }
      } catch (error) {
        return fail(reply, error)
      }
    },
  )

  app.get<{ Params: { ref: string } }>('/internal/members/:ref/earnings', { schema: { params: ref } }, async (request, reply) => {
    try {
      const earnings = await options.wallets.earnings(request.params.ref)
      const info = await tokenInfo()
      const units = (value: bigint) => formatUnits(value, info.decimals)
      return {
        address: earnings?.member ?? null,
        isMember: earnings?.isMember ?? false,
        withdrawable: units(earnings?.withdrawable ?? 0n),
        total: units(earnings?.total ?? 0n),
        withdrawn: units(earnings?.withdrawn ?? 0n),
        token: info.symbol,
        adminFee: info.adminFee,
        protocolFee: info.protocolFee,
      }
    } catch (error) {
      return fail(reply, error)
    }
  })

  app.post<{ Params: { ref: string }; Body: { to: string } }>(
    '/internal/members/:ref/withdrawals',
    { schema: { params: ref, body: { type: 'object', additionalProperties: false, required: ['to'], properties: { to: { type: 'string', maxLength: 64 } } } } },
    async (request, reply) => {
      try {
        const paid = await options.wallets.withdraw(request.params.ref, request.body.to)
        const info = await tokenInfo()
        return { amount: formatUnits(paid.amount, info.decimals), to: paid.to, transactionHash: paid.transactionHash, token: info.symbol }
      } catch (error) {
        return fail(reply, error)
      }
    },
  )

  app.post<{ Params: { ref: string }; Body: { payTo?: string } }>(
    '/internal/members/:ref/erasure',
    { schema: { params: ref, body: { type: 'object', additionalProperties: false, properties: { payTo: { type: 'string', maxLength: 64 } } } } },
    async (request, reply) => {
      try {
        const receipt = await options.wallets.erase(request.params.ref, request.body?.payTo)
        if (receipt === undefined) return { erased: false }
        const info = await tokenInfo()
        return {
          erased: true,
          address: receipt.address,
          paid: formatUnits(receipt.paid, info.decimals),
          ...(receipt.paidTo === undefined ? {} : { paidTo: receipt.paidTo, transactionHash: receipt.transactionHash }),
          remaining: formatUnits(receipt.remaining, info.decimals),
          token: info.symbol,
          claim: receipt.claim,
        }
      } catch (error) {
        return fail(reply, error)
      }
    },
  )
}
