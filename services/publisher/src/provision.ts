import { StreamPermission, type StreamrClient } from '@streamr/sdk'
import { dataType, type DataTypeKey } from '@fitstream/shared'
import { streamIdFor, type StreamNaming } from './streams.js'

export interface ProvisionOptions {
  readonly naming: StreamNaming
  readonly types: readonly DataTypeKey[]
  /** Partitions for new streams (existing streams keep theirs). */
  readonly partitions: number
  /** Extra publisher addresses that get PUBLISH. */
  readonly publishers?: readonly string[]
  /** Addresses that get SUBSCRIBE directly (buyers normally get it through the Hub). */
  readonly subscribers?: readonly string[]
}

export interface ProvisionReport {
  readonly streams: { id: string; created: boolean; granted: string[] }[]
  /** True when nothing had to change. */
  readonly unchanged: boolean
}

/**
 * Makes sure every data type's stream exists with the right permissions. Idempotent: a second run
 * changes nothing and says so. SUBSCRIBE is never made public (public streams are unencrypted and free).
 */
export async function provisionStreams(client: StreamrClient, options: ProvisionOptions): Promise<ProvisionReport> {
  const streams: ProvisionReport['streams'] = []
  for (const type of options.types) {
    const id = streamIdFor(options.naming, type)
    let created = false
    let stream
    try {
      stream = await client.getStream(id)
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'STREAM_NOT_FOUND') throw error
      stream = await client.createStream({
        id,
        partitions: options.partitions,
        description: `FitStream: ${dataType(type).description} (${dataType(type).unit}), anonymised`,
      })
      created = true
    }
    const granted: string[] = []
    const wanted: [string, StreamPermission][] = [
      ...(options.publishers ?? []).map((address): [string, StreamPermission] => [address, StreamPermission.PUBLISH]),
      ...(options.subscribers ?? []).map((address): [string, StreamPermission] => [address, StreamPermission.SUBSCRIBE]),
    ]
    for (const [userId, permission] of wanted) {
      if (await stream.hasPermission({ userId, permission, allowPublic: false })) continue
      await stream.grantPermissions({ userId, permissions: [permission] })
      granted.push(`${permission}:${userId.toLowerCase()}`)
    }
    streams.push({ id: stream.id, created, granted })
  }
  return { streams, unchanged: streams.every((s) => !s.created && s.granted.length === 0) }
}
