import { randomBytes } from 'node:crypto'
import { StreamrClient, type StreamrClientConfig } from '@streamr/sdk'
import type { PublisherConfig } from './config.js'

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
  if (config.STREAMR_WEBSOCKET_HOST !== undefined && config.STREAMR_WEBSOCKET_PORT !== undefined) {
    // A full descriptor: the node advertises exactly this address and never looks itself up online.
    controlLayer.peerDescriptor = {
      nodeId: randomBytes(20).toString('hex'),
      websocket: { host: config.STREAMR_WEBSOCKET_HOST, port: config.STREAMR_WEBSOCKET_PORT, tls: false },
    }
    controlLayer.websocketPortRange = { min: config.STREAMR_WEBSOCKET_PORT, max: config.STREAMR_WEBSOCKET_PORT }
    controlLayer.websocketServerEnableTls = false
  }
  const contracts: NonNullable<StreamrClientConfig['contracts']> = {}
  if (config.STREAMR_STREAM_REGISTRY_ADDRESS !== undefined) contracts.streamRegistryChainAddress = config.STREAMR_STREAM_REGISTRY_ADDRESS
  if (config.STREAMR_RPC_URL !== undefined) contracts.rpcs = [{ url: config.STREAMR_RPC_URL }]
  if (config.STREAMR_CHAIN_ID !== undefined) contracts.ethereumNetwork = { chainId: config.STREAMR_CHAIN_ID }
  if (config.STREAMR_THE_GRAPH_URL !== undefined) contracts.theGraphUrl = config.STREAMR_THE_GRAPH_URL
  return {
    environment: config.STREAMR_ENVIRONMENT,
    auth: { privateKey },
    metrics: false,
    ...(Object.keys(controlLayer).length > 0 ? { network: { controlLayer } } : {}),
    ...(Object.keys(contracts).length > 0 ? { contracts } : {}),
  }
}

export function createStreamrClient(config: PublisherConfig): StreamrClient {
  return new StreamrClient(streamrClientConfig(config))
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
