import { randomBytes } from 'node:crypto'
import type { EntryPointDescriptor } from './entry-point.js'

/**
 * The subset of @streamr/sdk's StreamrClientConfig this package fills in, spelled out here so
 * that the package does not depend on the SDK. It is structurally assignable to
 * StreamrClientConfig (arrays are mutable on purpose: the SDK's types are).
 */
export interface LocalStreamrClientConfig {
  /** dev2 brings test defaults: no entry point discovery, no TLS, no metrics, short RSA keys. */
  environment: 'dev2'
  auth: { privateKey: string }
  metrics: false
  network: {
    controlLayer: {
      entryPoints: { nodeId: string; websocket: { host: string; port: number; tls: false } }[]
      peerDescriptor: { nodeId: string; websocket: { host: string; port: number; tls: false } }
      websocketPortRange: { min: number; max: number }
      websocketServerEnableTls: false
      entryPointDiscovery: { enabled: false }
    }
  }
  contracts: {
    streamRegistryChainAddress: string
    rpcs: { url: string }[]
    ethereumNetwork: { chainId: number }
    theGraphUrl: string
  }
}

export interface ClientConfigOptions {
  privateKey: string
  /** Port of the client's own WebSocket server. */
  websocketPort: number
  /** 40 hex characters; random when omitted. */
  nodeId?: string | undefined
}

export interface NetworkEndpoints {
  host: string
  rpcUrl: string
  chainId: number
  streamRegistryAddress: string
  entryPoint: EntryPointDescriptor
}

// Nothing listens on port 1: a stray The Graph query (e.g. searchStreams) fails at once instead
// of hanging on dev2's default address, which does not exist here.
const UNUSED_THE_GRAPH_URL = 'http://127.0.0.1:1/the-graph-is-not-available-locally'

export function buildClientConfig(network: NetworkEndpoints, opts: ClientConfigOptions): LocalStreamrClientConfig {
  const nodeId = opts.nodeId ?? randomBytes(20).toString('hex')
  if (!/^[0-9a-fA-F]{40}$/.test(nodeId)) {
    throw new Error(`nodeId must be 40 hex characters, got ${JSON.stringify(nodeId)}`)
  }
  const { entryPoint } = network
  return {
    environment: 'dev2',
    auth: { privateKey: opts.privateKey },
    metrics: false,
    network: {
      controlLayer: {
        entryPoints: [{ nodeId: entryPoint.nodeId, websocket: { ...entryPoint.websocket } }],
        // A complete descriptor stops the node from working out its address and region itself,
        // which involves asking services on the internet.
        peerDescriptor: {
          nodeId,
          websocket: { host: network.host, port: opts.websocketPort, tls: false },
        },
        websocketPortRange: { min: opts.websocketPort, max: opts.websocketPort },
        websocketServerEnableTls: false,
        entryPointDiscovery: { enabled: false },
      },
    },
    contracts: {
      streamRegistryChainAddress: network.streamRegistryAddress,
      rpcs: [{ url: network.rpcUrl }],
      ethereumNetwork: { chainId: network.chainId },
      theGraphUrl: UNUSED_THE_GRAPH_URL,
    },
  }
}
