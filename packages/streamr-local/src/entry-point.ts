import { DhtNode, NodeType, randomDhtAddress, toDhtAddressRaw, type PeerDescriptor } from '@streamr/dht'
import { freePort } from './free-port.js'

/** A PeerDescriptor as plain JSON, the shape @streamr/sdk takes in `network.controlLayer`. */
export interface EntryPointDescriptor {
  readonly nodeId: string
  readonly websocket: { readonly host: string; readonly port: number; readonly tls: false }
}

export interface EntryPoint {
  readonly descriptor: EntryPointDescriptor
  stop(): Promise<void>
}

export interface StartEntryPointOptions {
  host: string
  /** When omitted, a free port is picked (and re-picked if another process takes it first). */
  port?: number | undefined
  log?: ((msg: string) => void) | undefined
  /** The DHT id to start under (default: a random one); a restarted entry point keeps its id. */
  nodeId?: string | undefined
}

// A fixed region keeps the node from asking a CDN on the internet where it is.
const REGION = 1
const PORT_ATTEMPTS = 5

/**
 * Starts the DHT node every client joins through. It only relays control-layer traffic; it
 * neither publishes nor subscribes.
 */
export async function startEntryPoint(opts: StartEntryPointOptions): Promise<EntryPoint> {
  const attempts = opts.port === undefined ? PORT_ATTEMPTS : 1
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort(opts.host))
    try {
      return await startOnPort(opts.host, port, opts.nodeId)
    } catch (err) {
      if (attempt >= attempts) throw err
      // Between freePort() and bind another process may have taken the port.
      opts.log?.(`entry point could not start on port ${port}, trying another: ${String(err)}`)
    }
  }
}

async function startOnPort(host: string, port: number, id: string | undefined): Promise<EntryPoint> {
  // A random id per network: a client of one network that reaches another network's entry point
  // (a reused port) fails the handshake instead of silently joining the wrong network.
  const nodeId = (id ?? randomDhtAddress()) as ReturnType<typeof randomDhtAddress>
  const self: PeerDescriptor = {
    nodeId: toDhtAddressRaw(nodeId),
    type: NodeType.NODEJS,
    websocket: { host, port, tls: false },
    region: REGION,
  }
  const node = new DhtNode({
    nodeId,
    websocketHost: host,
    websocketPortRange: { min: port, max: port },
    websocketServerEnableTls: false,
    // Being its own entry point makes the node check connectivity against itself rather than
    // against the public Streamr entry points.
    entryPoints: [self],
    region: REGION,
  })
  try {
    await node.start()
    await node.joinDht([self])
  } catch (err) {
    // stop() can itself throw after a half-finished start; the start error is the useful one.
    await node.stop().catch(() => undefined)
    throw err
  }
  let stopping: Promise<void> | undefined
  return {
    descriptor: { nodeId, websocket: { host, port, tls: false } },
    stop: () => (stopping ??= node.stop()),
  }
}
