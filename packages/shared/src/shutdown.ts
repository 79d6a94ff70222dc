import type { Logger } from './logger.js'

export type ShutdownStep = readonly [name: string, close: () => Promise<unknown>]

/**
 * Runs the shutdown steps in order on SIGTERM or SIGINT: stop taking jobs and finish in-flight ones
 * first, then the HTTP server, then connections. A second signal, or the timeout, exits at once.
 * Returns a function that shuts down the same way from within, with `exitCode` once every step has
 * closed (a process that must be restarted exits non-zero, so its supervisor starts it again).
 */
export function onShutdown(logger: Logger, timeoutMs: number, steps: () => readonly ShutdownStep[]): (reason: string, exitCode?: number) => Promise<void> {
  let shuttingDown = false
  let requestedExitCode = 0
  const shutdown = async (signal: string): Promise<void> => {
    if (shuttingDown) {
      logger.warn({ signal }, 'second signal: exiting now')
      process.exit(1)
    }
    shuttingDown = true
    logger.info({ signal }, 'shutting down')
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown timed out: exiting')
      process.exit(1)
    }, timeoutMs)
    timer.unref()
    let failed = false
    for (const [name, close] of steps()) {
      try {
        await close()
        logger.debug({ step: name }, 'closed')
      } catch (err) {
        failed = true
        logger.error({ err, step: name }, 'shutdown step failed')
      }
    }
    logger.info('shut down')
    logger.flush()
    process.exit(failed ? 1 : requestedExitCode)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
  return async (reason, exitCode = 0) => {
    requestedExitCode = Math.max(requestedExitCode, exitCode)
    // Already shutting down: the drain goes on, and the process leaves with the code asked for.
    if (!shuttingDown) await shutdown(reason)
  }
}
