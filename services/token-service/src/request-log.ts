import type { FastifyInstance, FastifyRequest } from 'fastify'

/**
 * Request logs name the path only. Query strings carry what authorises: reconnect links, Google's
 * authorization codes and states; none of them may reach a log line.
 */
export function logPathsOnly(app: FastifyInstance): void {
  app.setChildLoggerFactory((logger, bindings, options) =>
    logger.child(bindings, { ...options, serializers: { ...options.serializers, req: requestWithoutQuery } }),
  )
}

function requestWithoutQuery(request: FastifyRequest): Record<string, unknown> {
  return { method: request.method, url: pathOf(request.url), host: request.host, remoteAddress: request.ip }
}

function pathOf(url: string | undefined): string | undefined {
  return url?.split('?')[0]
}
