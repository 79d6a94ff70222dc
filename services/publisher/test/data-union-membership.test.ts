import { afterAll, describe, expect, it } from 'vitest'
import { Wallet } from 'ethers'
import { ConfigError, InvalidPayloadError, parseMembershipJob } from '@fitstream/shared'
import { MembershipIntents } from '../src/data-union-membership.js'
import { loadDataUnionConfig } from '../src/data-union-config.js'
import { InvalidAddressError, parseAddress, parseFeeFraction } from '../src/data-union.js'
import { testRedis, uniquePrefix } from '../../../tests/helpers.js'

const prefix = uniquePrefix('data-union-membership')
const { redis, cleanup } = testRedis(prefix)
afterAll(cleanup)

const address = () => Wallet.createRandom().address

describe('membership requests', () => {
  it('applies only the latest request per address: a join retried after a later part does not undo it', async () => {
    const intents = new MembershipIntents(redis, `${prefix}:publisher:du-intents`)
    const [a, b] = [address(), address()]
    expect(await intents.claim('join', [a, b], 1_000)).toEqual({ current: [a, b], superseded: [] })
    expect(await intents.claim('part', [a], 2_000)).toEqual({ current: [a], superseded: [] })
    // The join of t=1000 comes back from its backoff after the part of t=2000.
    expect(await intents.claim('join', [a, b], 1_000)).toEqual({ current: [b], superseded: [a] })
    // A retry of the part itself still applies; so does a later join.
    expect(await intents.claim('part', [a], 2_000)).toEqual({ current: [a], superseded: [] })
    expect(await intents.claim('join', [a], 3_000)).toEqual({ current: [a], superseded: [] })
  })

  it('refuses a malformed job payload as permanent', () => {
    expect(() => parseMembershipJob({ action: 'join', members: [] })).toThrow(InvalidPayloadError)
    expect(() => parseMembershipJob({ action: 'leave', members: [address()] })).toThrow(InvalidPayloadError)
    expect(() => parseMembershipJob({ action: 'join', members: ['0x1234'] })).toThrow(InvalidPayloadError)
  })
})

describe('addresses and fees', () => {
  it('accepts checksummed and all-lowercase addresses, refuses a wrong checksum with its code', () => {
    const good = address()
    expect(parseAddress('to', good.toLowerCase())).toBe(good)
    const i = good.slice(2).search(/[a-fA-F]/) + 2
    const c = good[i]!
    const flipped = `${good.slice(0, i)}${c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()}${good.slice(i + 1)}`
    expect(() => parseAddress('to', flipped)).toThrow(InvalidAddressError)
    expect(() => parseAddress('to', flipped)).toThrow(/checksum/)
    expect(() => parseAddress('to', '0xabc')).toThrow(expect.objectContaining({ code: 'FST_ERR_INVALID_ADDRESS' }))
  })

  it('reads the admin fee as a fraction and refuses one that leaves nothing after the protocol fee', () => {
    expect(parseFeeFraction('0.1')).toBe(100_000_000_000_000_000n)
    expect(() => parseFeeFraction('10')).toThrow(RangeError)
    const env = { STREAMR_PRIVATE_KEY: `0x${'11'.repeat(32)}`, STREAMR_ENVIRONMENT: 'dev2' }
    expect(loadDataUnionConfig(env).DATA_UNION_ADMIN_FEE).toBe('0.1')
    expect(() => loadDataUnionConfig({ ...env, DATA_UNION_ADMIN_FEE: '0.995' })).toThrow(ConfigError)
    expect(() => loadDataUnionConfig({ ...env, DATA_UNION_ADMIN_FEE: '1.5' })).toThrow(/DATA_UNION_ADMIN_FEE/)
  })
})
