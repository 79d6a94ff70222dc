import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { UpstreamError } from '@fitstream/shared'
import { GoogleHealthClient } from '../src/google-health.js'
import { GoogleRateLimitError } from '../src/google-fit.js'

/**
 * The wire under the real googleapis client: answers compressed as Google compresses them, Google's
 * errors read from a compressed body, connections kept for the next request, and a timeout.
 */
let server: Server
let rootUrl: string
let connections = 0
let answer: (req: IncomingMessage, res: ServerResponse) => void = () => undefined

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume()
    req.on('end', () => answer(req, res))
  })
  server.on('connection', () => connections++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  rootUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

const gzipped = (res: ServerResponse, status: number, body: unknown): void => {
  const bytes = gzipSync(JSON.stringify(body))
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-encoding': 'gzip', 'content-length': bytes.length })
  res.end(bytes)
}

describe('the transport under the googleapis client', () => {
  it('reads gzip answers, sends the token, and keeps one connection for requests one after another', async () => {
    const seen: { authorization?: string; encoding?: string }[] = []
    answer = (req, res) => {
      seen.push({ authorization: req.headers.authorization, encoding: req.headers['accept-encoding'] })
      gzipped(res, 200, { name: 'users/me/settings', timeZone: 'Europe/Helsinki' })
    }
    const client = new GoogleHealthClient({ rootUrl, timeoutMs: 5_000 })
    const before = connections
    for (let i = 0; i < 5; i++) expect(await client.settings('token-1')).toEqual({ name: 'users/me/settings', timeZone: 'Europe/Helsinki' })
    expect(connections - before).toBe(1)
    expect(seen).toHaveLength(5)
    expect(seen[0]).toEqual({ authorization: 'Bearer token-1', encoding: 'gzip' })
  })

  it('reads an answer that starts with a byte order mark, as a fetch Response does', async () => {
    answer = (_req, res) => {
      const bytes = Buffer.from(`\uFEFF${JSON.stringify({ name: 'users/me/settings', timeZone: 'Asia/Kolkata' })}`, 'utf8')
      res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8', 'content-length': bytes.length })
      res.end(bytes)
    }
    expect(await new GoogleHealthClient({ rootUrl, timeoutMs: 5_000 }).settings('token-1')).toEqual({ name: 'users/me/settings', timeZone: 'Asia/Kolkata' })
  })

  it('reads deflate answers, zlib-wrapped or raw, as fetch does', async () => {
    for (const deflate of [deflateSync, deflateRawSync]) {
      answer = (_req, res) => {
        const bytes = deflate(JSON.stringify({ name: 'users/me/settings', timeZone: 'Europe/Oslo' }))
        res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8', 'content-encoding': 'deflate', 'content-length': bytes.length })
        res.end(bytes)
      }
      expect(await new GoogleHealthClient({ rootUrl, timeoutMs: 5_000 }).settings('token-1')).toEqual({ name: 'users/me/settings', timeZone: 'Europe/Oslo' })
    }
  })

  it('reads Google’s error from a compressed body, as the client classifies it', async () => {
    answer = (_req, res) =>
      gzipped(res, 429, {
        error: {
          code: 429,
          message: 'Quota exceeded',
          status: 'RESOURCE_EXHAUSTED',
          details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'rateLimitExceeded' }],
        },
      })
    const failure = await new GoogleHealthClient({ rootUrl, timeoutMs: 5_000 }).settings('token-1').catch((error: unknown) => error)
    expect(failure).toBeInstanceOf(GoogleRateLimitError)
    expect((failure as Error).message).toBe('Google Health API answered 429 rateLimitExceeded: Quota exceeded')
  })

  it('gives up on an answer that does not come in time, as Google unreachable', async () => {
    answer = () => undefined
    const failure = await new GoogleHealthClient({ rootUrl, timeoutMs: 200 }).settings('token-1').catch((error: unknown) => error)
    expect(failure).toBeInstanceOf(UpstreamError)
    expect(failure).toMatchObject({ code: 'FST_ERR_GOOGLE_UNREACHABLE', permanent: false })
  })
})
