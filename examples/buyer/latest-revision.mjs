/**
 * The buyer's side of at-least-once delivery. Streamr nodes drop a message they have already seen
 * only while they remember it (in memory, until they restart), and a publisher that crashes between
 * publishing and noting it publishes again: the same record can reach a buyer twice. A record with
 * a higher `revision` supersedes the earlier one (late data corrected it). So a buyer keeps, per
 * stream, the highest revision it has of each record id, and ignores anything not higher.
 *
 * Kept in memory here; a buyer that stores records does the same in its database (an upsert that
 * only replaces a row when the revision is higher), which also survives its own restarts.
 */
export class LatestRevisions {
  #highest = new Map()

  /**
   * Whether `record` ({ id, revision? }; cohort records have no revision: 0) is new or supersedes
   * what this buyer has of it on `streamId`; if so, it is remembered as the highest.
   */
  accept(streamId, record) {
    const key = `${streamId}\n${record.id}`
    const revision = record.revision ?? 0
    const highest = this.#highest.get(key)
    if (highest !== undefined && revision <= highest) return false
    this.#highest.set(key, revision)
    return true
  }

  /** The highest revision held of a record, or undefined. */
  highest(streamId, id) {
    return this.#highest.get(`${streamId}\n${id}`)
  }
}
