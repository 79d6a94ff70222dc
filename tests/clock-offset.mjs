// Preloaded (NODE_OPTIONS=--import) into one service process of a system test: its Date.now runs
// ahead of the machine's by the milliseconds written in FITSTREAM_CLOCK_OFFSET_FILE (0 while the
// file is missing or empty), so the test can move that service past a point in time, such as the
// end of a cohort window's grace period, without waiting for it. Re-read at most every 100 ms.
import { readFileSync } from 'node:fs'

const file = process.env.FITSTREAM_CLOCK_OFFSET_FILE
const machineNow = Date.now.bind(Date)
let offset = 0
let readAt = Number.NEGATIVE_INFINITY

function currentOffset() {
  const now = machineNow()
  if (file !== undefined && now - readAt >= 100) {
    readAt = now
    try {
      offset = Number(readFileSync(file, 'utf8').trim()) || 0
    } catch {
      offset = 0
    }
  }
  return offset
}

Date.now = () => machineNow() + currentOffset()
