import type { FastifyRequest } from 'fastify'

/**
 * The address a request came from, for per-address limits. Behind `trustedHops` reverse proxies
 * (each appending to X-Forwarded-For) it is the entry the outermost trusted proxy added: entries
 * further left were written by the client and prove nothing. Without proxies, the socket's peer.
 */
export function clientAddress(trustedHops: number): (request: FastifyRequest) => string {
  if (trustedHops === 0) return (request) => request.ip
  return (request) => {
    const header = request.headers['x-forwarded-for']
    const hops = (Array.isArray(header) ? header.join(',') : (header ?? ''))
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '')
    return hops[hops.length - trustedHops] ?? request.ip
  }
}
