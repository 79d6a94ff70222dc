import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Logger } from './logger.js'
import type { ServiceMetrics } from './metrics.js'

export type ReadinessCheck = () => Promise<void>

export interface ServerOptions {
  readonly logger: Logger
  readonly metrics: ServiceMetrics
  /** Named checks that must all pass for /readyz to answer 200 (e.g. redis, streamr). */
  readonly readiness: Readonly<Record<string, ReadinessCheck>>
  /** Largest accepted request body in bytes (default 64 KiB). */
  readonly bodyLimit?: number
  /** Called at scrape time before /metrics renders (e.g. to sample queue depths). */
  readonly beforeScrape?: () => Promise<void>
  /** Include error details in 5xx responses (development only). */
  readonly exposeErrors?: boolean
}

const READINESS_TIMEOUT_MS = 2_000

/**
 * The HTTP server every service runs: /healthz (the process is alive), /readyz (its dependencies
 * answer) and /metrics (Prometheus). Services register their own routes on the returned instance.
 * Not listening yet: main.ts calls listen(), tests call inject().
 */
export function buildServer(options: ServerOptions): FastifyInstance {
  const fastifyOptions: FastifyServerOptions = {
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimit ?? 64 * 1024,
    // A client that sends its headers and then dawdles over the body does not hold a connection forever.
    requestTimeout: 30_000,
    requestIdHeader: 'x-request-id',
    // Unknown fields are an error the caller should hear about, not something silently dropped.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
  }
  const app = Fastify(fastifyOptions) as unknown as FastifyInstance

  app.setErrorHandler((error: Error & { statusCode?: number; validation?: unknown; code?: string }, request, reply) => {
    const status = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500
    if (status >= 500) {
      request.log.error({ err: error }, 'request failed')
      return reply.status(status).send({
        error: 'Internal Server Error',
        message: options.exposeErrors === true ? error.message : 'An unexpected error occurred; it has been logged.',
      })
    }
    return reply.status(status).send({ error: httpStatusText(status), code: error.code, message: error.message })
  })
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: 'Not Found', message: `No route for ${request.method} ${request.url.split('?')[0]}` }),
  )

  app.get('/healthz', { logLevel: 'warn' }, async () => ({ status: 'ok' }))

  app.get('/readyz', { logLevel: 'warn' }, async (_request, reply) => {
    const results = await Promise.all(
      Object.entries(options.readiness).map(async ([name, check]) => {
        try {
          await withTimeout(check(), READINESS_TIMEOUT_MS, `${name} did not answer within ${READINESS_TIMEOUT_MS} ms`)
          return [name, { ok: true }] as const
        } catch (error) {
          return [name, { ok: false, error: error instanceof Error ? error.message : String(error) }] as const
        }
      }),
    )
    const ready = results.every(([, r]) => r.ok)
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks: Object.fromEntries(results) })
  })

  app.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => {
    if (options.beforeScrape !== undefined) {
      await options.beforeScrape().catch((err: unknown) => app.log.warn({ err }, 'metrics sampling failed'))
    }
    return reply.type(options.metrics.registry.contentType).send(await options.metrics.registry.metrics())
  })

  return app
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

function httpStatusText(status: number): string {
  const texts: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    409: 'Conflict',
    413: 'Payload Too Large',
    415: 'Unsupported Media Type',
    422: 'Unprocessable Entity',
    429: 'Too Many Requests',
  }
  return texts[status] ?? 'Error'
}
