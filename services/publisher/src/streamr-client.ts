import { randomBytes } from 'node:crypto'
import { config as streamrConfig } from '@streamr/config'
import { StreamrClient, type StreamrClientConfig } from '@streamr/sdk'
import { Gauge, type Registry } from 'prom-client'
import { websocketTls, type PublisherConfig } from './config.js'
import { publisherIdentity } from './message-signing.js'

/**
 * SDK configuration from FitStream's variables. Without overrides it is the public Streamr network
 * on Polygon; the STREAMR_* overrides point it at another chain and entry points (a local network).
 */
export function streamrClientConfig(config: PublisherConfig): StreamrClientConfig {
  const privateKey = config.STREAMR_PRIVATE_KEY.startsWith('0x') ? config.STREAMR_PRIVATE_KEY : `0x${config.STREAMR_PRIVATE_KEY}`
  const controlLayer: NonNullable<NonNullable<StreamrClientConfig['network']>['controlLayer']> = {}
  if (config.STREAMR_ENTRY_POINTS !== undefined) {
    controlLayer.entryPoints = config.STREAMR_ENTRY_POINTS
    // Explicit entry points replace discovery, which would look up operators on The Graph.
    controlLayer.entryPointDiscovery = { enabled: false }
  }
  const tls = websocketTls(config)
  controlLayer.websocketServerEnableTls = tls
  if (config.STREAMR_TLS_CERT_FILE !== undefined && config.STREAMR_TLS_KEY_FILE !== undefined) {
    controlLayer.tlsCertificate = { certFileName: config.STREAMR_TLS_CERT_FILE, privateKeyFileName: config.STREAMR_TLS_KEY_FILE }
  }
  if (!config.STREAMR_WEBSOCKET_SERVER) {
    // No server: buyers' nodes and this one meet over WebRTC, signalled through the network.
    controlLayer.websocketPortRange = null
    if (config.STREAMR_ENVIRONMENT === 'dev2') {
      // A local network has nothing to learn an address or region from; elsewhere the node asks.
      controlLayer.peerDescriptor = { nodeId: randomBytes(20).toString('hex') }
    }
  } else if (config.STREAMR_WEBSOCKET_PORT !== undefined) {
    // One port, so that compose can publish it and the operator can open it on the firewall: TCP for
    // the WebSocket server, and the same number over UDP for every WebRTC connection (which the
    // node-datachannel compatibility package multiplexes on it).
    controlLayer.websocketPortRange = { min: config.STREAMR_WEBSOCKET_PORT, max: config.STREAMR_WEBSOCKET_PORT }
    controlLayer.webrtcPortRange = { min: config.STREAMR_WEBSOCKET_PORT, max: config.STREAMR_WEBSOCKET_PORT }
    if (config.STREAMR_WEBSOCKET_HOST !== undefined) {
      // A full descriptor: the node advertises exactly this address and never looks itself up online.
      controlLayer.peerDescriptor = {
        nodeId: randomBytes(20).toString('hex'),
        websocket: { host: config.STREAMR_WEBSOCKET_HOST, port: config.STREAMR_WEBSOCKET_PORT, tls },
      }
    }
  }
  const contracts: NonNullable<StreamrClientConfig['contracts']> = {}
  if (config.STREAMR_STREAM_REGISTRY_ADDRESS !== undefined) contracts.streamRegistryChainAddress = config.STREAMR_STREAM_REGISTRY_ADDRESS
  if (config.STREAMR_RPC_URL !== undefined) contracts.rpcs = [{ url: config.STREAMR_RPC_URL }]
  if (config.STREAMR_CHAIN_ID !== undefined) contracts.ethereumNetwork = { chainId: config.STREAMR_CHAIN_ID }
  if (config.STREAMR_THE_GRAPH_URL !== undefined) contracts.theGraphUrl = config.STREAMR_THE_GRAPH_URL
  return {
    environment: config.STREAMR_ENVIRONMENT,
    auth: { identity: publisherIdentity(privateKey) },
    metrics: false,
    // The SDK's default is a day: a buyer refused a key before buying would wait that long after.
    cache: { maxAge: config.STREAMR_PERMISSION_CACHE_MS },
    network: {
      ...(Object.keys(controlLayer).length > 0 ? { controlLayer } : {}),
      node: {
        streamPartitionMinPropagationTargets: config.STREAMR_PROPAGATION_TARGETS,
        streamPartitionMaxPropagationBufferSize: config.STREAMR_PROPAGATION_BUFFER_SIZE,
      },
    },
    ...(Object.keys(contracts).length > 0 ? { contracts } : {}),
  }
}

export function createStreamrClient(config: PublisherConfig): StreamrClient {
  return new StreamrClient(streamrClientConfig(config))
}

/**
 * The first time this process publishes to a stream, joins its partitions and waits (up to
 * `timeoutMs`) for a neighbour. A message published before the node has found the stream's
 * subscribers reaches none of them, which right after a restart would lose the first messages of
 * the resumed job. Uses the SDK's node facade (internal in 103.3.1, which FitStream pins).
 */
export function createStreamJoiner(client: StreamrClient, timeoutMs = 5_000): (streamId: string) => Promise<void> {
  const joined = new Map<string, Promise<void>>()
  return (streamId) => {
    let joining = joined.get(streamId)
    if (joining === undefined) {
      joining = (async () => {
        const partitions = await (await client.getStream(streamId)).getPartitionCount()
        const node = client.getNode()
        await Promise.all(
          // No neighbour in time means nobody is subscribed yet: publish anyway.
          Array.from({ length: partitions }, (_, p) => node.join(`${streamId}#${p}` as never, { minCount: 1, timeout: timeoutMs }).catch(() => undefined)),
        )
      })()
      joined.set(streamId, joining)
      joining.catch(() => joined.delete(streamId))
    }
    return joining
  }
}

/**
 * `fitstream_streamr_stream_neighbors{stream_part}`: how many nodes this publisher's node sends each
 * stream partition to, read at every scrape. A buyer that goes away (closed, crashed, its network
 * gone) shows as a neighbour less, while publishing to everyone else goes on; a partition at 0 has
 * nobody subscribed through this node. Uses the SDK's node facade (internal in 103.3.1), and only
 * once the node has started: a scrape does not start it.
 */
export function registerStreamNeighborsMetric(client: StreamrClient, registry: Registry): Gauge<'stream_part'> {
  return new Gauge({
    name: 'fitstream_streamr_stream_neighbors',
    help: "Nodes this publisher's node sends a stream partition to (buyers' nodes, or nodes relaying to them)",
    labelNames: ['stream_part'],
    registers: [registry],
    async collect() {
      const node = client.getNode()
      // Private in the typings; true until the node has started (asking it anything would start it).
      if ((node as unknown as { isStarting(): boolean }).isStarting()) return
      const parts = await node.getStreamParts()
      const counts = await Promise.all(parts.map(async (part) => [part, (await node.getNeighbors(part)).length] as const))
      this.reset()
      for (const [part, count] of counts) this.set({ stream_part: part }, count)
    },
  })
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2'] as const

/**
 * The Streamr network package installs handlers for these signals when it is loaded, and they call
 * process.exit as soon as the network node stops, which would cut off in-flight jobs. The publisher
 * drains its worker first and then destroys the client itself, so those handlers are removed.
 */
export function detachStreamrSignalHandlers(): void {
  for (const signal of SIGNALS) process.removeAllListeners(signal)
}

/**
 * Waits until the chain's JSON-RPC answers. The SDK's provider (an ethers FallbackProvider) keeps
 * the failure of its first network detection for good: a publisher that touched it while the RPC
 * was down would fail every publish until restarted. So the worker starts only once the RPC answers;
 * an outage after that is retried normally.
 */
export async function waitForChain(config: PublisherConfig, onWait: (message: string) => void): Promise<void> {
  const urls = config.STREAMR_RPC_URL !== undefined ? [config.STREAMR_RPC_URL] : streamrConfig[config.STREAMR_ENVIRONMENT].rpcEndpoints.map((e) => e.url)
  for (let delayMs = 500; ; delayMs = Math.min(delayMs * 2, 30_000)) {
    for (const url of urls) {
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
          signal: AbortSignal.timeout(5_000),
        })
        if (response.ok) return
      } catch {
        // tried again below
      }
    }
    onWait(`the chain's RPC does not answer (${urls.length} endpoint(s)); waiting ${delayMs} ms before starting to publish`)
    await new Promise((resolve) => setTimeout(resolve, delayMs))
  }
}
