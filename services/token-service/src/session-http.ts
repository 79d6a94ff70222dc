import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Session, SessionStore } from './sessions.js'

/** The session cookie's name over http; over https it carries the `__Host-` prefix (see SessionCookies). */
export const SESSION_COOKIE = 'fitstream_session'
const FORM_COOKIE = 'fitstream_form'
const MAX_AGE_S = 30 * 86_400
/** A session no user is bound to yet lives 15 minutes in Redis (SessionStore); its cookie no longer. */
const UNBOUND_MAX_AGE_S = 15 * 60
const FORM_MAX_AGE_S = 3600

/**
 * Reads and sets the session cookie: a signed session id, HttpOnly, SameSite=Lax. Over https it is
 * Secure and named `__Host-…`, so no subdomain or plain-http page can set or overwrite it.
 *
 * A session is made only when someone starts connecting (or opens a reconnect link), never for a page
 * view: the forms people post before that carry a token checked against a cookie of its own (double
 * submit), which costs nothing in Redis.
 */
export class SessionCookies {
  readonly cookieName: string
  private readonly formCookieName: string

  constructor(
    readonly store: SessionStore,
    private readonly secure: boolean,
  ) {
    this.cookieName = secure ? `__Host-${SESSION_COOKIE}` : SESSION_COOKIE
    this.formCookieName = secure ? `__Host-${FORM_COOKIE}` : FORM_COOKIE
  }

  async current(request: FastifyRequest): Promise<Session | undefined> {
    const id = this.currentId(request)
    return id === undefined ? undefined : this.store.get(id)
  }

  /** The session id the browser presents (validly signed), whether or not it still exists. */
  currentId(request: FastifyRequest): string | undefined {
    const raw = request.cookies[this.cookieName]
    if (raw === undefined) return undefined
    const unsigned = request.unsignCookie(raw)
    return unsigned.valid && unsigned.value !== null ? unsigned.value : undefined
  }

  /** The browser's session, or a new short-lived one when it has none (someone starts connecting). */
  async ensure(request: FastifyRequest, reply: FastifyReply): Promise<Session> {
    const existing = await this.current(request)
    if (existing !== undefined) return existing
    const session = await this.store.create()
    this.setSessionCookie(reply, session.id, UNBOUND_MAX_AGE_S)
    return session
  }

  /** Signs the user in on a new session (see SessionStore.signIn) and gives the browser its cookie. */
  async signIn(request: FastifyRequest, reply: FastifyReply, userId: string): Promise<Session> {
    const session = await this.store.signIn(userId, this.currentId(request))
    this.setSessionCookie(reply, session.id, MAX_AGE_S)
    return session
  }

  async end(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const session = await this.current(request)
    if (session !== undefined) await this.store.destroy(session.id)
    void reply.clearCookie(this.cookieName, { path: '/', secure: this.secure })
  }

  /** The token a form shown before any session carries: the browser's form cookie, set when it has none. */
  formToken(request: FastifyRequest, reply: FastifyReply): string {
    const existing = this.presentedFormToken(request)
    if (existing !== undefined) return existing
    const token = randomBytes(24).toString('base64url')
    void reply.setCookie(this.formCookieName, token, { signed: true, httpOnly: true, sameSite: 'lax', secure: this.secure, path: '/', maxAge: FORM_MAX_AGE_S })
    return token
  }

  /** Whether a posted form's token is the one this browser's form cookie holds. */
  checkFormToken(request: FastifyRequest, presented: string | undefined): boolean {
    const expected = this.presentedFormToken(request)
    if (expected === undefined || presented === undefined) return false
    const a = Buffer.from(presented)
    const b = Buffer.from(expected)
    return a.length === b.length && timingSafeEqual(a, b)
  }

  private presentedFormToken(request: FastifyRequest): string | undefined {
    const raw = request.cookies[this.formCookieName]
    if (raw === undefined) return undefined
    const unsigned = request.unsignCookie(raw)
    return unsigned.valid && unsigned.value !== null && /^[A-Za-z0-9_-]{32}$/.test(unsigned.value) ? unsigned.value : undefined
  }

  private setSessionCookie(reply: FastifyReply, id: string, maxAge: number): void {
    // Lax, not Strict: the cookie must come along on Google's redirect back to the callback.
    void reply.setCookie(this.cookieName, id, { signed: true, httpOnly: true, sameSite: 'lax', secure: this.secure, path: '/', maxAge })
  }
}
