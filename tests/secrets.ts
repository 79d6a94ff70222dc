import { expect } from 'vitest'
import type { RegisteredUser, Stack } from '@fitstream/devstack'
import { createRedis } from '@fitstream/shared'

/**
 * Looks for every secret of a stack in everything an operator or an attacker with read access could
 * see: each service's log lines and /metrics, and every value under the stack's prefix in Redis (job
 * payloads, dead letters, user records, history). Returns where each one was found.
 */
export async function findLeaks(stack: Stack, extra: Readonly<Record<string, string>> = {}): Promise<{ leaks: string[]; places: Record<string, string> }> {
  const secrets: Record<string, string> = {
    'admin token': stack.secrets.ADMIN_TOKEN,
    'internal token': stack.secrets.INTERNAL_API_TOKEN,
    'session secret': stack.secrets.SESSION_SECRET,
    'pseudonym key': stack.secrets.PSEUDONYM_KEY,
    'refresh-token key': stack.secrets.REFRESH_TOKEN_KEYS.split(':')[1]!,
    'access-token key': stack.secrets.ACCESS_TOKEN_KEYS.split(':')[1]!,
    'publisher key': stack.publisherKey.replace(/^0x/, ''),
    'Google client secret': stack.google.clientSecret,
    ...extra,
  }
  const places: Record<string, string> = {}
  for (const service of stack.services) {
    places[`${service.label} log`] = service.lines.join('\n')
    places[`${service.label} metrics`] = await (await fetch(`${service.url}/metrics`)).text()
  }
  places.redis = await redisContents(stack)
  const leaks = Object.entries(places).flatMap(([where, text]) =>
    Object.entries(secrets)
      .filter(([, secret]) => text.includes(secret))
      .map(([what]) => `${what} in ${where}`),
  )
  // Access tokens are issued by the fake as ya29.…; none may be readable anywhere.
  for (const [where, text] of Object.entries(places)) if (/ya29\.[A-Za-z0-9_-]{10}/.test(text)) leaks.push(`an access token in ${where}`)
  return { leaks, places }
}

/**
 * The last check of a fault test: after all it broke, none of the stack's secrets nor the users'
 * refresh tokens is readable anywhere, in places that do hold the run's traces.
 */
export async function expectNoLeaks(stack: Stack, users: readonly RegisteredUser[]): Promise<void> {
  const refreshTokens = Object.fromEntries(users.map((user, i) => [`refresh token ${i}`, user.google.refreshToken]))
  const { leaks, places } = await findLeaks(stack, refreshTokens)
  expect(places['fetcher log']).toContain('window fetched')
  expect(leaks).toEqual([])
}

/** Every value under the stack's prefix, as text. */
async function redisContents(stack: Stack): Promise<string> {
  const redis = createRedis(stack.redisUrl, 'producer', 'secrets-test')
  const parts: string[] = []
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${stack.prefix}:*`, 'COUNT', 500)
      cursor = next
      for (const key of keys) {
        const type = await redis.type(key)
        if (type === 'string') parts.push((await redis.getBuffer(key))?.toString('latin1') ?? '')
        else if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(key)))
        else if (type === 'list') parts.push(JSON.stringify(await redis.lrange(key, 0, -1)))
        else if (type === 'set') parts.push(JSON.stringify(await redis.smembers(key)))
        else if (type === 'zset') parts.push(JSON.stringify(await redis.zrange(key, 0, -1)))
        else if (type === 'stream') parts.push(JSON.stringify(await redis.xrange(key, '-', '+')))
      }
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
  return parts.join('\n')
}
