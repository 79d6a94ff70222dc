import { StreamPermission, type Stream, type StreamrClient } from '@streamr/sdk'
import { dataType, type DataTypeKey } from '@fitstream/shared'
import { cohortStreamIdFor, streamIdFor, type StreamNaming } from './streams.js'

export interface ProvisionOptions {
  readonly naming: StreamNaming
  readonly types: readonly DataTypeKey[]
  /** Also the `<type>/cohort` stream of each type (default true). */
  readonly cohorts?: boolean
  /** Partitions for new streams (existing streams keep theirs; a difference is reported). */
  readonly partitions: number
  /** A storage node to assign the streams to, and how many days it keeps them. */
  readonly storage?: { readonly node: string; readonly days: number } | undefined
  /** Extra publisher addresses that get PUBLISH. */
  readonly publishers?: readonly string[]
  /** Addresses that get SUBSCRIBE directly (buyers normally get it through the Hub). */
  readonly subscribers?: readonly string[]
  readonly onProgress?: (message: string) => void
}

export interface ProvisionedStream {
  readonly id: string
  readonly created: boolean
  readonly partitions: number
  /** What was changed on an existing stream (description, storage, permissions). */
  readonly changes: string[]
  /** Set when an existing stream's partition count differs from the requested one (never changed). */
  readonly warning?: string
}

export interface ProvisionReport {
  readonly streams: ProvisionedStream[]
  /** True when nothing had to change. */
  readonly unchanged: boolean
}

/**
 * Makes sure every data type's stream (and its cohort stream) exists with the description,
 * partitions, storage and permissions FitStream needs. Idempotent: a second run sends no
 * transaction and says so. SUBSCRIBE is never made public (public streams are unencrypted and free),
 * and a public SUBSCRIBE found on a stream is an error rather than something silently kept.
 */
export async function provisionStreams(client: StreamrClient, options: ProvisionOptions): Promise<ProvisionReport> {
  const wanted = options.types.flatMap((type) => {
    const spec = dataType(type)
    const base = `FitStream: ${spec.description} (${spec.unit})`
    const streams = [
      {
        id: streamIdFor(options.naming, type),
        description: `${base}: hourly records of the people who opted in, under a monthly pseudonym (pseudonymised, not anonymous)`,
      },
    ]
    if (options.cohorts !== false) {
      streams.push({
        id: cohortStreamIdFor(options.naming, type),
        description: `${base}: noisy averages over many people (differential privacy), no pseudonyms`,
      })
    }
    return streams
  })
  const streams: ProvisionedStream[] = []
  for (const { id, description } of wanted) {
    streams.push(await provisionStream(client, id, description, options))
  }
  return { streams, unchanged: streams.every((s) => !s.created && s.changes.length === 0) }
}

async function provisionStream(client: StreamrClient, id: string, description: string, options: ProvisionOptions): Promise<ProvisionedStream> {
  const metadata = {
    description,
    partitions: options.partitions,
    ...(options.storage === undefined ? {} : { storageDays: options.storage.days }),
  }
  let stream: Stream
  let created = false
  const changes: string[] = []
  try {
    stream = await client.getStream(id)
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'STREAM_NOT_FOUND') throw error
    options.onProgress?.(`creating ${id}`)
    stream = await client.createStream({ id, ...metadata })
    created = true
  }
  const partitions = await stream.getPartitionCount()
  if (!created) {
    const current = await stream.getMetadata()
    if (current.description !== description || (options.storage !== undefined && current.storageDays !== options.storage.days)) {
      options.onProgress?.(`updating the metadata of ${id}`)
      // Partitions are kept as they are: changing them would move pseudonyms between partitions.
      await stream.setMetadata({ ...current, description, ...(options.storage === undefined ? {} : { storageDays: options.storage.days }) })
      changes.push('metadata')
    }
  }
  if (await stream.hasPermission({ public: true, permission: StreamPermission.SUBSCRIBE })) {
    throw new Error(`${id} is publicly subscribable, so its data is unencrypted and free: revoke the public SUBSCRIBE permission first`)
  }
  const grants: [string, StreamPermission][] = [
    ...(options.publishers ?? []).map((address): [string, StreamPermission] => [address, StreamPermission.PUBLISH]),
    ...(options.subscribers ?? []).map((address): [string, StreamPermission] => [address, StreamPermission.SUBSCRIBE]),
  ]
  for (const [userId, permission] of grants) {
    if (await stream.hasPermission({ userId, permission, allowPublic: false })) continue
    options.onProgress?.(`granting ${permission} on ${id} to ${userId}`)
    await stream.grantPermissions({ userId, permissions: [permission] })
    changes.push(`${permission}:${userId.toLowerCase()}`)
  }
  if (options.storage !== undefined) {
    const nodes = (await stream.getStorageNodes()).map((n) => n.toLowerCase())
    if (!nodes.includes(options.storage.node.toLowerCase())) {
      options.onProgress?.(`assigning ${id} to storage node ${options.storage.node}`)
      await stream.addToStorageNode(options.storage.node, { wait: false })
      changes.push(`storage:${options.storage.node.toLowerCase()}`)
    }
  }
  const warning =
    partitions === options.partitions
      ? undefined
      : `${id} has ${partitions} partitions, not ${options.partitions}: existing streams keep theirs (a new count would move pseudonyms between partitions)`
  return { id: stream.id, created, partitions, changes, ...(warning === undefined ? {} : { warning }) }
}
