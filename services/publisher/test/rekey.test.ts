import { afterEach, describe, expect, it, vi } from 'vitest'
import { createLogger } from '@fitstream/shared'
import { startRekeying } from '../src/rekey.js'

describe('stream key renewal', () => {
  afterEach(() => void vi.useRealTimers())

  it('renews the key of every stream published to, on schedule, with per-subscriber rekeying', async () => {
    vi.useFakeTimers()
    const calls: unknown[] = []
    const rekeying = startRekeying({ updateEncryptionKey: async (opts) => void calls.push(opts) }, 3_600_000, createLogger('test', 'silent'))
    rekeying.published('0xabc/fitness/steps')
    rekeying.published('0xabc/fitness/steps')
    rekeying.published('0xabc/fitness/steps/cohort')
    await vi.advanceTimersByTimeAsync(3_600_000)
    expect(calls).toEqual([
      { streamId: '0xabc/fitness/steps', distributionMethod: 'rekey' },
      { streamId: '0xabc/fitness/steps/cohort', distributionMethod: 'rekey' },
    ])
    rekeying.stop()
    await vi.advanceTimersByTimeAsync(3_600_000)
    expect(calls).toHaveLength(2)
  })

  it('keeps going when one stream cannot be renewed', async () => {
    const renewed: string[] = []
    const rekeying = startRekeying(
      {
        updateEncryptionKey: async ({ streamId }) => {
          if (streamId.endsWith('steps')) throw new Error('network down')
          renewed.push(streamId)
        },
      },
      0,
      createLogger('test', 'silent'),
    )
    rekeying.published('0xabc/fitness/steps')
    rekeying.published('0xabc/fitness/calories')
    await rekeying.rekeyAll()
    expect(renewed).toEqual(['0xabc/fitness/calories'])
  })
})
