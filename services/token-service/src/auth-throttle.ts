import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { RedisConnection } from '@fitstream/shared'

const WINDOW_S = 15 * 60

/**
 * Failed authentications (admin or internal token, Bull Board's Basic prompt) per IP, counted in
 * Redis so every replica sees them: past `limit` in 15 minutes, every request from that IP that
 * presents credentials is refused with 429, a right token too, until the window ends.
 */
export function registerAuthThrottle(
  app: FastifyInstance,
  options: { redis: RedisConnection; prefix: string; limit: number; refused: (code: string) => void; address: (request: FastifyRequest) => string },
): void {
  const key = (request: FastifyRequest) => `${options.prefix}:auth-failures:${options.address(request)}`
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers.authorization === undefined) return
    const failures = Number((await options.redis.get(key(request))) ?? 0)
    if (failures < options.limit) return
    options.refused('FST_ERR_RATE_LIMITED')
    const ttl = await options.redis.ttl(key(request))
    return reply
      .status(429)
      .header('retry-after', String(Math.max(1, ttl)))
      .send({ error: 'Too Many Requests', code: 'FST_ERR_RATE_LIMITED', message: 'too many failed authentications from this address; try again later' })
  })
  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode !== 401 || request.headers.authorization === undefined) return
    await options.redis.multi().incr(key(request)).expire(key(request), WINDOW_S, 'NX').exec()
  })
}
