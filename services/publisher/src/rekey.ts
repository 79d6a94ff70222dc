import type { StreamrClient } from '@streamr/sdk'
import type { Logger } from '@fitstream/shared'

type Rekeyable = Pick<StreamrClient, 'updateEncryptionKey'>

export interface Rekeying {
  /** Notes a stream this process publishes to (its key is the one to renew). */
  published(streamId: string): void
  /** Renews every noted stream's key now; resolves when all have been tried. */
  rekeyAll(): Promise<void>
  stop(): void
}

/**
 * Gives every stream the publisher writes to a new encryption key every `everyMs`, with the SDK's
 * `rekey` method: each subscriber must fetch the new key itself, so its SUBSCRIBE permission is
 * checked again. A buyer whose Hub subscription ran out can still read what was published before,
 * but nothing after the next renewal.
 */
export function startRekeying(client: Rekeyable, everyMs: number, logger: Logger): Rekeying {
  const streams = new Set<string>()
  const rekeyAll = async (): Promise<void> => {
    for (const streamId of streams) {
      try {
        await client.updateEncryptionKey({ streamId, distributionMethod: 'rekey' })
        logger.info({ streamId }, 'stream encryption key renewed')
      } catch (err) {
        // The current key stays in use; the next round tries again.
        logger.warn({ err, streamId }, 'could not renew the stream encryption key')
      }
    }
  }
  const timer = everyMs > 0 ? setInterval(() => void rekeyAll(), everyMs) : undefined
  timer?.unref()
  return {
    published: (streamId) => void streams.add(streamId),
    rekeyAll,
    stop: () => clearInterval(timer),
  }
}
