/** What `npm run bench` measured that FitStream's targets are about. */
export interface TargetMeasures {
  /** CPU per user-sync spent by FitStream's services and Redis (ms). */
  readonly fitstreamCpuMsPerSync: number
  /** Redis commands per user-sync, Lua-internal calls included. */
  readonly redisCommandsPerSync: number
  /** Redis bytes per registered user once the pipeline is idle. */
  readonly redisBytesPerUserAtRest: number
  /**
   * p99 at half throughput from a person's sync to the buyer receiving their data, less the wait for
   * their release slot (sync to ready plus slot to buyer, ms); NaN when nothing arrived.
   */
  readonly p99SyncToBuyerWithoutSlotWaitMs: number
  /** Peak RSS of each service process (MB). */
  readonly peakRssMb: Readonly<Record<string, number>>
}

/** One target: what was measured, the target, and whether it was met. */
export interface TargetRow {
  readonly target: string
  readonly measured: string
  readonly limit: string
  readonly met: boolean
}

/** The targets of issue 29, in the order the report prints them. */
export const TARGETS = {
  cpuMsPerSync: 8,
  redisCommandsPerSync: 120,
  redisBytesPerUserAtRest: 3 * 1024,
  p99SyncToBuyerWithoutSlotWaitMs: 2_000,
  peakRssMbPerService: 200,
} as const

/** Evaluates every target against one run's measures; a figure that could not be measured counts as missed. */
export function evaluateTargets(m: TargetMeasures): TargetRow[] {
  const rss = Object.entries(m.peakRssMb).sort((a, b) => b[1] - a[1])
  const highest = rss[0]
  return [
    {
      target: 'FitStream CPU per user-sync',
      measured: `${m.fitstreamCpuMsPerSync} ms`,
      limit: `<= ${TARGETS.cpuMsPerSync} ms`,
      met: m.fitstreamCpuMsPerSync <= TARGETS.cpuMsPerSync,
    },
    {
      target: 'Redis commands per user-sync',
      measured: String(m.redisCommandsPerSync),
      limit: `<= ${TARGETS.redisCommandsPerSync}`,
      met: m.redisCommandsPerSync <= TARGETS.redisCommandsPerSync,
    },
    {
      target: 'Redis per registered user at rest',
      measured: `${(m.redisBytesPerUserAtRest / 1024).toFixed(2)} KB`,
      limit: `<= ${TARGETS.redisBytesPerUserAtRest / 1024} KB`,
      met: m.redisBytesPerUserAtRest <= TARGETS.redisBytesPerUserAtRest,
    },
    {
      target: 'p99 sync to buyer less the slot wait, half throughput',
      measured: Number.isNaN(m.p99SyncToBuyerWithoutSlotWaitMs) ? 'not measured' : `${m.p99SyncToBuyerWithoutSlotWaitMs} ms`,
      limit: `< ${TARGETS.p99SyncToBuyerWithoutSlotWaitMs} ms`,
      // NaN compares false: no arrivals is a miss.
      met: m.p99SyncToBuyerWithoutSlotWaitMs < TARGETS.p99SyncToBuyerWithoutSlotWaitMs,
    },
    {
      target: 'peak RSS per service',
      measured: highest === undefined ? 'not measured' : `${highest[1]} MB (${highest[0]})`,
      limit: `< ${TARGETS.peakRssMbPerService} MB`,
      met: rss.length > 0 && rss.every(([, mb]) => mb < TARGETS.peakRssMbPerService),
    },
  ]
}

/** A plain-text table with a header row and columns padded to their widest cell. */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join(' | ')
      .trimEnd()
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n')
}
