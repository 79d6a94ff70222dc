import type { StageInput } from '../src/index.js'

/** A valid fetch job for `userId`: one hour of steps. */
export const fetchInput = (userId: string): StageInput<'fetch'> => ({
  syncId: 'sync-1',
  userId,
  dataTypes: ['steps'],
  window: { startMs: 1_700_000_000_000, endMs: 1_700_003_600_000 },
  bucketMs: 3_600_000,
})
