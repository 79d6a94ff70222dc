import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'

/**
 * Accepts `Authorization: Bearer <token>`, or HTTP Basic with the token as password so a browser can
 * open Bull Board (it prompts for credentials when `challenge` is set).
 */
export function requireToken(expected: string, options: { realm?: string; challenge?: boolean } = {}): onRequestHookHandler {
  const matches = tokenMatcher(expected)
  return (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    if (matches(request.headers.authorization)) {
      done()
      return
    }
    if (options.challenge === true) reply.header('www-authenticate', `Basic realm="${options.realm ?? 'FitStream'}", charset="UTF-8"`)
    void reply.status(401).send({ error: 'Unauthorized', message: 'a valid bearer token is required' })
  }
}

/**
 * A route hook for `/users/:id/...`: the operator's bearer token, or the session of the person the
 * path names; anyone else gets 401, and another person's session 403.
 */
export function adminOrOwner(
  adminToken: string,
  sessions: { current(request: FastifyRequest): Promise<{ userId?: string | undefined } | undefined> },
): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  const isAdmin = tokenMatcher(adminToken)
  return async (request, reply) => {
    if (isAdmin(request.headers.authorization)) return undefined
    const session = await sessions.current(request)
    if (session?.userId === undefined) return reply.status(401).send({ error: 'Unauthorized', message: 'a valid bearer token is required' })
    if (session.userId !== (request.params as { id?: string }).id) {
      return reply.status(403).send({ error: 'Forbidden', message: 'a session may only act on its own user' })
    }
    return undefined
  }
}

/** Whether an Authorization header carries `expected` (compared in constant time). */
export function tokenMatcher(expected: string): (authorization: string | undefined) => boolean {
  const expectedDigest = digest(expected)
  return (authorization) => {
    const presented = presentedToken(authorization)
    return presented !== undefined && timingSafeEqual(digest(presented), expectedDigest)
  }
}

function presentedToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const [scheme, value] = header.split(' ', 2)
  if (value === undefined) return undefined
  if (scheme?.toLowerCase() === 'bearer') return value.trim()
  if (scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    return colon === -1 ? undefined : decoded.slice(colon + 1)
  }
  return undefined
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest()
}
