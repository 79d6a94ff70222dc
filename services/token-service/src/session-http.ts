import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Session, SessionStore } from './sessions.js'

export const SESSION_COOKIE = 'fitstream_session'
const MAX_AGE_S = 30 * 86_400

/** Reads and sets the session cookie: a signed session id, HttpOnly, SameSite=Lax, Secure over https. */
export class SessionCookies {
  constructor(
    readonly store: SessionStore,
    private readonly secure: boolean,
  ) {}

  async current(request: FastifyRequest): Promise<Session | undefined> {
    const raw = request.cookies[SESSION_COOKIE]
    if (raw === undefined) return undefined
    const unsigned = request.unsignCookie(raw)
    if (!unsigned.valid || unsigned.value === null) return undefined
    return this.store.get(unsigned.value)
  }

  async ensure(request: FastifyRequest, reply: FastifyReply): Promise<Session> {
    const existing = await this.current(request)
    if (existing !== undefined) return existing
    const session = await this.store.create()
    // Lax, not Strict: the cookie must come along on Google's redirect back to the callback.
    void reply.setCookie(SESSION_COOKIE, session.id, { signed: true, httpOnly: true, sameSite: 'lax', secure: this.secure, path: '/', maxAge: MAX_AGE_S })
    return session
  }

  async end(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const session = await this.current(request)
    if (session !== undefined) await this.store.destroy(session.id)
    void reply.clearCookie(SESSION_COOKIE, { path: '/' })
  }
}
