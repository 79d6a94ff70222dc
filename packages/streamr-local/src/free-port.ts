import { createServer } from 'node:net'

// The kernel may hand the same ephemeral port to two bind(0) calls made before either port is
// really taken. Remembering what this process already handed out avoids that within one process
// (e.g. several clientConfig() calls in a row); other processes can still race, which callers
// that own the bind cover by retrying.
const handedOut = new Set<number>()
const MAX_REMEMBERED = 4096
const MAX_ATTEMPTS = 20

/** A TCP port that is free on `host` right now (the kernel picks it). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const port = await bindEphemeral(host)
    if (handedOut.has(port)) continue
    if (handedOut.size >= MAX_REMEMBERED) handedOut.clear()
    handedOut.add(port)
    return port
  }
  throw new Error(`No free port found on ${host} after ${MAX_ATTEMPTS} attempts`)
}

function bindEphemeral(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : undefined
      server.close(() => {
        if (port === undefined) reject(new Error(`Could not read the port bound on ${host}`))
        else resolve(port)
      })
    })
  })
}
