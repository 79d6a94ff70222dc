import { StreamrClient, type StreamrClientConfig } from '@streamr/sdk'

/**
 * A buyer's view of FitStream: subscribes to every partition of the given streams and prints each
 * message it receives (decrypted) as one JSON line. Runs as its own process because the Streamr
 * SDK takes over the process's signal and error handlers.
 *
 * argv[2]: JSON { config: StreamrClientConfig, streams: string[] }
 */
interface SubscriberInput {
  readonly config: StreamrClientConfig
  readonly streams: readonly string[]
}

const input = JSON.parse(process.argv[2] ?? '{}') as SubscriberInput
const client = new StreamrClient(input.config)
const print = (event: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(event)}\n`)

for (const streamId of input.streams) {
  const stream = await client.getStream(streamId)
  const partitions = await stream.getPartitionCount()
  for (let partition = 0; partition < partitions; partition++) {
    const subscription = await client.subscribe({ id: streamId, partition }, (content, metadata) => {
      // Everything a buyer sees of a message besides its content: what a linking attack reads.
      const { publisherId, timestamp, sequenceNumber, msgChainId } = metadata
      print({ event: 'message', streamId, partition, publisherId, timestamp, sequenceNumber, msgChainId, content })
    })
    // A message the buyer can't read (no key, bad signature, a gap it gave up on) is dropped by the
    // SDK; saying so on stderr is what lets a test tell a lost message from a late one.
    subscription.on('error', (error) => void process.stderr.write(`subscription ${streamId}#${partition}: ${error.message}\n`))
  }
}
print({ event: 'ready', address: await client.getUserId() })
