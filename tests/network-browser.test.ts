import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import type { ServiceProcess } from '@fitstream/devstack'
import { WITHOUT_SERVER, keysOf, records } from '../services/publisher/test/harness.js'
import { CHROMIUM, launchChromium } from '../services/token-service/test/support.js'
import { usePublisherHarness } from './system.js'

/**
 * A buyer in a browser, as the Hub's own live view is one: Debian's Chromium loads a page that runs
 * the SDK's browser build (its UMD bundle, served here from node_modules), subscribes with the
 * buyer's key to a stream of FitStream's publisher on the local network, gets the key through key
 * exchange and decrypts the records. The publisher runs no WebSocket server (a seller behind NAT),
 * so the browser can only reach it over WebRTC; the page counts its peer connections to show it.
 */
const SDK_BUNDLE = createRequire(import.meta.url)
  .resolve('@streamr/sdk')
  .replace(/exports-nodejs\.(c?js)$/, 'exports-umd.min.js')
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>FitStream buyer</title>
<script src="/streamr-sdk.js"></script></head><body><pre id="log"></pre></body></html>`

/** Counts what the page opens, before any of its scripts run: WebSocket URLs and WebRTC connections. */
const INSTRUMENT = `
window.fitstream = { sockets: [], peerConnections: 0, connectedPeers: 0, received: [], errors: [] }
const NativeWebSocket = window.WebSocket
window.WebSocket = class extends NativeWebSocket {
  constructor(url, protocols) { super(url, protocols); window.fitstream.sockets.push(String(url)) }
}
const NativePeerConnection = window.RTCPeerConnection
window.RTCPeerConnection = class extends NativePeerConnection {
  constructor(config) {
    super(config)
    window.fitstream.peerConnections++
    this.addEventListener('connectionstatechange', () => { if (this.connectionState === 'connected') window.fitstream.connectedPeers++ })
  }
}
`

interface PageState {
  sockets: string[]
  peerConnections: number
  connectedPeers: number
  received: { content: { records?: { id: string; revision: number }[]; schema: string; pseudonym?: string }; publisherId: string }[]
  errors: string[]
}

let publisher: ServiceProcess
let server: Server
let browser: Browser
let page: Page

const state = (): Promise<PageState> => page.evaluate(() => (globalThis as unknown as { fitstream: PageState }).fitstream)

describe.runIf(existsSync(CHROMIUM) || process.env.FITSTREAM_REQUIRE_BROWSER === '1')('a buyer in a browser', () => {
  const system = usePublisherHarness('network-browser', {
    provision: (harness) => ['--types', 'steps', '--grant-subscribe', harness.buyer.address],
    failureLog: () => `publisher log:\n${publisher?.tail(30)}\n`,
  })
  const { queues } = system

  beforeAll(async () => {
    publisher = await system.harness.startPublisher(system.publisherEnv({ ...WITHOUT_SERVER, STREAMR_JOIN_TIMEOUT_MS: '30000' }))
    const bundle = readFileSync(SDK_BUNDLE)
    server = createServer((req, res) => {
      if (req.url === '/streamr-sdk.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle)
      else if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE)
      else if (req.url === '/favicon.ico') res.writeHead(204).end()
      else res.writeHead(404).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    browser = await launchChromium()
    page = await browser.newPage()
    page.on('pageerror', (error) => process.stderr.write(`page error: ${error.message}\n`))
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') process.stderr.write(`page ${message.type()}: ${message.text()}\n`)
    })
    await page.addInitScript(INSTRUMENT)
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
  })

  afterAll(async () => {
    await browser?.close()
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)))
  })

  it('subscribes with the SDK browser build, gets the key over WebRTC from a publisher with no server, and decrypts every record', async () => {
    const { network } = system.harness
    const ep = network.entryPoint
    const config = {
      environment: 'dev2',
      auth: { privateKey: system.harness.buyer.privateKey },
      metrics: false,
      network: {
        controlLayer: {
          entryPoints: [{ nodeId: ep.nodeId, websocket: { ...ep.websocket } }],
          entryPointDiscovery: { enabled: false },
          // A descriptor of its own keeps the page from looking up its region on Streamr's CDN.
          peerDescriptor: { nodeId: randomBytes(20).toString('hex'), type: 'browser' },
        },
      },
      contracts: {
        streamRegistryChainAddress: network.streamRegistryAddress,
        rpcs: [{ url: network.rpcUrl }],
        ethereumNetwork: { chainId: network.chainId },
        theGraphUrl: 'http://127.0.0.1:1/the-graph-is-not-available-locally',
      },
    }
    const streamId = system.harness.streamId('steps')
    await page.evaluate(
      async ({ config, streamId }) => {
        // The UMD bundle sets window.StreamrClient to the client class itself.
        const StreamrClient = (globalThis as unknown as { StreamrClient: new (config: unknown) => BrowserClient }).StreamrClient
        const fitstream = (globalThis as unknown as { fitstream: PageState }).fitstream
        const client = new StreamrClient(config)
        const subscription = await client.subscribe({ id: streamId, partition: 0 }, (content: unknown, metadata: { publisherId: string }) => {
          fitstream.received.push({ content: content as PageState['received'][number]['content'], publisherId: metadata.publisherId })
        })
        subscription.on('error', (error: Error) => fitstream.errors.push(error.message))
      },
      { config, streamId },
    )

    // Live data reaches only the neighbours a stream part has when it is published: wait for the
    // page's WebRTC connection to the publisher first.
    const connectBy = Date.now() + 60_000
    while ((await state()).connectedPeers === 0 && Date.now() < connectBy) await new Promise((resolve) => setTimeout(resolve, 250))
    const job = { syncId: 'browser', records: records('steps', 8), cohorts: [] }
    await queues.add('publish', job, { jobId: 'browser' })
    const want = keysOf(job)
    const deadline = Date.now() + 90_000
    let seen = await state()
    const got = (s: PageState) => new Set(s.received.flatMap((m) => (m.content.records ?? []).map((r) => `${r.id}:${r.revision}`)))
    while (!want.every((key) => got(seen).has(key)) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250))
      seen = await state()
    }
    expect(
      want.filter((key) => !got(seen).has(key)),
      JSON.stringify({ ...seen, received: seen.received.length }),
    ).toEqual([])
    expect(seen.received[0]).toMatchObject({ content: { schema: 'fitstream.records/1', pseudonym: job.records[0]!.pseudonym } })
    expect(seen.received[0]!.publisherId.toLowerCase()).toBe(system.harness.seller.address.toLowerCase())
    expect(seen.errors).toEqual([])
    // The page's WebSockets all went to the entry point (loopback, plain, as browsers allow for
    // private addresses); the publisher, which has no server, was reached over WebRTC.
    expect(new Set(seen.sockets.map((url) => new URL(url).origin))).toEqual(new Set([`ws://${ep.websocket.host}:${ep.websocket.port}`]))
    expect(seen.connectedPeers).toBeGreaterThan(0)
    process.stdout.write(
      `browser buyer: ${JSON.stringify({ records: want.length, sockets: seen.sockets, peerConnections: seen.peerConnections, connectedPeers: seen.connectedPeers })}\n`,
    )
  }, 150_000)
})

interface BrowserClient {
  subscribe(
    options: { id: string; partition: number },
    onMessage: (content: unknown, metadata: { publisherId: string }) => void,
  ): Promise<{ on(event: 'error', listener: (error: Error) => void): void }>
}
