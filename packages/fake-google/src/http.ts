import type { IncomingMessage, ServerResponse } from 'node:http'

/** Google's own front ends cap bodies far above what any Fit request needs; 1 MiB is plenty. */
export const MAX_BODY_BYTES = 1024 * 1024

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`Request payload size exceeds the limit: ${limit} bytes.`)
    this.name = 'BodyTooLargeError'
  }
}

export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'])
    if (Number.isFinite(declared) && declared > limit) {
      // Let the rest of the upload drain unread; the reply carries Connection: close.
      req.resume()
      reject(new BodyTooLargeError(limit))
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    let settled = false
    req.on('data', (chunk: Buffer) => {
      if (settled) return
      size += chunk.length
      if (size > limit) {
        settled = true
        chunks.length = 0
        reject(new BodyTooLargeError(limit))
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => {
      if (settled) return
      settled = true
      resolve(Buffer.concat(chunks))
    })
    req.on('error', (err) => {
      if (settled) return
      settled = true
      reject(err)
    })
  })
}

export interface Reply {
  status: number
  body: unknown
  headers?: Record<string, string>
  /** Sent as is in place of `body`, still labelled JSON (a corrupted answer). */
  raw?: string
  /** Google pretty-prints Fitness responses unless asked not to; the token endpoint does not. */
  pretty?: boolean
}

export function send(res: ServerResponse, reply: Reply): void {
  if (res.destroyed || res.writableEnded || res.headersSent) return
  const text = reply.raw ?? (reply.body === undefined ? '' : JSON.stringify(reply.body, null, reply.pretty === true ? 2 : undefined))
  res.statusCode = reply.status
  for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value)
  if (text !== '') {
    res.setHeader('content-type', 'application/json; charset=UTF-8')
    res.setHeader('content-length', Buffer.byteLength(text))
  }
  res.end(text)
}
