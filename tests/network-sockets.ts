import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

/**
 * What a process has open on the network, read from /proc (Linux): how a test tells that two nodes
 * met over WebRTC (UDP, ICE) rather than over a WebSocket server (a listening TCP port).
 */
export interface ProcessSockets {
  /** Local TCP ports the process listens on. */
  readonly listeningTcpPorts: number[]
  /** UDP sockets the process holds (node-datachannel's ICE agents open one per connection). */
  readonly udpSockets: number
}

function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (match !== null) inodes.add(match[1]!)
    } catch {
      // closed while listing
    }
  }
  return inodes
}

/** Rows of /proc/net/{tcp,udp}{,6}: [local port, state, inode]. */
function rows(table: string): [number, string, string][] {
  let text: string
  try {
    text = readFileSync(`/proc/net/${table}`, 'utf8')
  } catch {
    return []
  }
  return text
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .map((cols) => [parseInt(cols[1]!.split(':')[1]!, 16), cols[3]!, cols[9]!])
}

const LISTEN = '0A'

export function processSockets(pid: number): ProcessSockets {
  const inodes = socketInodes(pid)
  const tcp = [...rows('tcp'), ...rows('tcp6')].filter(([, state, inode]) => state === LISTEN && inodes.has(inode))
  const udp = [...rows('udp'), ...rows('udp6')].filter(([, , inode]) => inodes.has(inode))
  return { listeningTcpPorts: [...new Set(tcp.map(([port]) => port))].sort((a, b) => a - b), udpSockets: udp.length }
}
