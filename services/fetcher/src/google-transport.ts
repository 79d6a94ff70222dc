import http from 'node:http'
import https from 'node:https'
import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import zlib from 'node:zlib'

/**
 * How the googleapis clients' requests go over the wire (gaxios' `fetchImplementation`): node:http
 * and node:https on connections kept alive across requests and fetches, the whole answer read into
 * one buffer and decompressed as Google sent it (the client asks for gzip). gaxios' own default
 * transport pipes every answer through a chain of streams and opens a connection whenever more
 * requests are in flight than its shared agent keeps idle; a fetch makes one request per data type,
 * many fetches at once.
 *
 * Redirects are not followed: Google's data APIs answer in place, and an unexpected 3xx reaches
 * the client as the error it is.
 */
export type GoogleFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

/** Idle connections kept per host: enough for every request of a full fetcher at once. */
const MAX_IDLE_CONNECTIONS = 1_024
/** How long an idle connection is kept (shorter when the server says it closes sooner). */
const IDLE_MS = 30_000

const AGENT_OPTIONS = { keepAlive: true, scheduling: 'lifo', maxFreeSockets: MAX_IDLE_CONNECTIONS, timeout: IDLE_MS } as const
const agents = { 'http:': new http.Agent(AGENT_OPTIONS), 'https:': new https.Agent(AGENT_OPTIONS) }

const inflate = promisify(zlib.inflate)
const inflateRaw = promisify(zlib.inflateRaw)

/** `deflate` as fetch reads it: zlib-wrapped as HTTP says, or the raw stream some servers send. */
async function inflateEither(body: Buffer): Promise<Buffer> {
  // A zlib stream starts with a header whose first byte names the deflate method (low nibble 8).
  return (body[0]! & 0x0f) === 8 ? inflate(body) : inflateRaw(body)
}

const decoders: Readonly<Record<string, (body: Buffer) => Promise<Buffer>>> = {
  gzip: promisify(zlib.gunzip),
  'x-gzip': promisify(zlib.gunzip),
  deflate: inflateEither,
  br: promisify(zlib.brotliDecompress),
}

export const googleFetch: GoogleFetch = async (input, init = {}) => {
  const url = input instanceof URL ? input : new URL(typeof input === 'string' ? input : input.url)
  const transport = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined
  if (transport === undefined) throw new TypeError(`no transport for ${url.protocol} URLs`)
  const headers: Record<string, string> = {}
  ;(init.headers instanceof Headers ? init.headers : new Headers(init.headers)).forEach((value, name) => {
    headers[name] = value
  })
  // gaxios hands over a proxy's agent when one is configured (HTTPS_PROXY).
  const agent = (init as { agent?: http.Agent }).agent ?? agents[url.protocol as keyof typeof agents]
  const answer = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const request = transport.request(url, { method: init.method ?? 'GET', headers, agent, signal: init.signal ?? undefined }, resolve)
    request.on('error', reject)
    const body = init.body
    if (body instanceof Readable) body.pipe(request)
    else if (body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array) request.end(body ?? undefined)
    else {
      request.destroy()
      reject(new TypeError('unsupported request body'))
    }
  })
  let body = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    answer.on('data', (chunk: Buffer) => chunks.push(chunk))
    answer.on('error', reject)
    answer.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)))
    // A connection cut (or a timeout) before the whole answer came.
    answer.on('close', () => {
      if (!answer.complete) reject(Object.assign(new Error('the connection closed before the whole answer came'), { code: 'ECONNRESET' }))
    })
  })
  const encoding = answer.headers['content-encoding']?.trim().toLowerCase()
  const decode = encoding === undefined ? undefined : decoders[encoding]
  if (decode !== undefined && body.length > 0) body = await decode(body)
  const responseHeaders = new Headers()
  for (let i = 0; i < answer.rawHeaders.length; i += 2) responseHeaders.append(answer.rawHeaders[i]!, answer.rawHeaders[i + 1]!)
  return new BufferedResponse(body, answer.statusCode ?? 0, answer.statusMessage ?? '', responseHeaders, url.href) as unknown as Response
}

/**
 * What gaxios and the googleapis client read of a fetch Response (status, headers, the body as
 * text, JSON, bytes or a stream, whether it was read), over an answer already in memory: a
 * Response would copy it into a web stream to read it back.
 */
class BufferedResponse {
  readonly ok: boolean
  readonly redirected = false
  readonly type = 'basic'
  bodyUsed = false

  constructor(
    private readonly bytes: Buffer,
    readonly status: number,
    readonly statusText: string,
    readonly headers: Headers,
    readonly url: string,
  ) {
    this.ok = status >= 200 && status < 300
  }

  get body(): Readable {
    this.bodyUsed = true
    return Readable.from([this.bytes])
  }

  async text(): Promise<string> {
    this.bodyUsed = true
    const text = this.bytes.toString('utf8')
    // As a fetch Response decodes UTF-8: a leading byte order mark is not part of the text.
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    this.bodyUsed = true
    return new Uint8Array(this.bytes).buffer
  }

  async blob(): Promise<Blob> {
    this.bodyUsed = true
    return new Blob([new Uint8Array(this.bytes)], { type: this.headers.get('content-type') ?? '' })
  }
}
