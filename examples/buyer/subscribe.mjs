#!/usr/bin/env node
/**
 * A buyer's reference subscriber for FitStream's streams: subscribes with the buyer's key (which
 * must hold SUBSCRIBE, i.e. have bought the project on the Hub), decrypts through the SDK's key
 * exchange with the publisher, and prints each record once per revision as a JSON line, dropping
 * copies and records superseded by a higher revision (see latest-revision.mjs).
 *
 *   BUYER_PRIVATE_KEY=0x… node examples/buyer/subscribe.mjs <streamId> [<streamId> …]
 *
 * STREAMR_ENVIRONMENT: polygon (default) or polygonAmoy. STREAMR_CLIENT_CONFIG: JSON merged over the
 * SDK configuration, for another network (FitStream's tests point it at a local one).
 *
 * stdout: {"event":"ready"} once subscribed, then {"event":"record","streamId","type","pseudonym","epoch","record"}.
 * stderr: a line for every record dropped, and the SDK's errors.
 */
import { StreamrClient } from '@streamr/sdk'
import { LatestRevisions } from './latest-revision.mjs'

const streams = process.argv.slice(2)
const privateKey = process.env.BUYER_PRIVATE_KEY
if (streams.length === 0 || privateKey === undefined || privateKey === '') {
  process.stderr.write('usage: BUYER_PRIVATE_KEY=0x… node subscribe.mjs <streamId> [<streamId> …]\n')
  process.exit(2)
}
const config = {
  environment: process.env.STREAMR_ENVIRONMENT ?? 'polygon',
  ...JSON.parse(process.env.STREAMR_CLIENT_CONFIG ?? '{}'),
  auth: { privateKey },
}
const client = new StreamrClient(config)
const latest = new LatestRevisions()
const print = (event) => void process.stdout.write(`${JSON.stringify(event)}\n`)

for (const streamId of streams) {
  const partitions = await (await client.getStream(streamId)).getPartitionCount()
  for (let partition = 0; partition < partitions; partition++) {
    const subscription = await client.subscribe({ id: streamId, partition }, (content) => {
      for (const record of content.records ?? []) {
        if (!latest.accept(streamId, record)) {
          process.stderr.write(`dropped ${streamId} ${record.id} revision ${record.revision ?? 0}: have revision ${latest.highest(streamId, record.id)}\n`)
          continue
        }
        // fitstream.records/2 carries the pseudonym on each record, /1 once for the message.
        print({ event: 'record', streamId, type: content.type, pseudonym: record.pseudonym ?? content.pseudonym, epoch: content.epoch, record })
      }
    })
    subscription.on('error', (error) => void process.stderr.write(`subscription ${streamId}#${partition}: ${error.message}\n`))
  }
}
print({ event: 'ready' })
