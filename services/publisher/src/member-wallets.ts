import { randomBytes } from 'node:crypto'
import type { RedisConnection } from '@fitstream/shared'
import { Wallet } from 'ethers'
import { InvalidPayloadError, type Keyring } from '@fitstream/shared'
import { parseAddress, type DataUnionChain, type MemberEarnings, type Withdrawal } from './data-union.js'

/**
 * Each person's member address in the product's Data Union, for people who know nothing of crypto:
 * by default a key FitStream creates and keeps encrypted under its own keyring (MEMBER_KEYS, held by
 * the membership service alone, which signs withdrawals with it); or an address the person gives,
 * whose key FitStream never sees. A person is named here by a reference the caller chooses
 * (a keyed hash of their account id, never the id itself), so this store links no address to a
 * name.
 */
export interface MemberWalletRecord {
  readonly address: string
  /** Present when FitStream holds the key (encrypted, bound to the reference). */
  readonly sealedKey?: string
  /** 'custodial': FitStream's key; 'own': the person's address. */
  readonly kind: 'custodial' | 'own'
}

export interface ErasureReceipt {
  readonly address: string
  /** Paid out before the account went, in the token's smallest unit (0 when nothing was withdrawn). */
  readonly paid: bigint
  readonly paidTo?: string
  readonly transactionHash?: string
  /** Still in the Data Union for this member, in the token's smallest unit. */
  readonly remaining: bigint
  /**
   * How the remaining earnings can still be claimed: with a key FitStream held, a claim code (shown
   * to the person once; the key is kept under it, linked to no account, until they claim); with
   * their own address, from their own wallet.
   */
  readonly claim:
    { readonly kind: 'own-address'; readonly address: string } | { readonly kind: 'claim-code'; readonly code: string } | { readonly kind: 'nothing' }
}

const REF = /^[A-Za-z0-9_-]{1,64}$/

export class MemberWallets {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    private readonly keyring: Keyring,
    private readonly chain: DataUnionChain,
    private readonly dataUnion: string,
  ) {}

  private key(ref: string): string {
    if (!REF.test(ref)) throw new InvalidPayloadError('a member reference must be 1-64 letters, digits, _ or -')
    return `${this.prefix}:membership:wallet:${ref}`
  }

  private context(ref: string): string {
    return `member-key:${ref}`
  }

  async get(ref: string): Promise<MemberWalletRecord | undefined> {
    const raw = await this.redis.get(this.key(ref))
    return raw === null ? undefined : (JSON.parse(raw) as MemberWalletRecord)
  }

  /**
   * The person's member address: the one they gave (`ownAddress`), else the key FitStream already
   * holds for them, else a new one. Idempotent: a second call returns the same address.
   */
  async ensure(ref: string, ownAddress?: string): Promise<MemberWalletRecord> {
    if (ownAddress !== undefined) {
      const record: MemberWalletRecord = { address: parseAddress('member address', ownAddress), kind: 'own' }
      const existing = await this.get(ref)
      if (existing?.kind === 'custodial') {
        throw new InvalidPayloadError('this person already has a member address FitStream holds the key to: withdraw its earnings rather than replacing it')
      }
      await this.redis.set(this.key(ref), JSON.stringify(record))
      return record
    }
    const wallet = Wallet.createRandom()
    const record: MemberWalletRecord = { address: wallet.address, sealedKey: this.keyring.encrypt(wallet.privateKey, this.context(ref)), kind: 'custodial' }
    // NX: two requests at once keep the first key, never a second one (whose earnings would be lost).
    const created = await this.redis.set(this.key(ref), JSON.stringify(record), 'NX')
    return created === 'OK' ? record : (await this.get(ref))!
  }

  async earnings(ref: string): Promise<MemberEarnings | undefined> {
    const record = await this.get(ref)
    return record === undefined ? undefined : this.chain.earnings(this.dataUnion, record.address)
  }

  /**
   * Everything withdrawable to `to`, the operator paying the gas: the member key FitStream holds
   * signs, the operator submits (withdrawAllToSigned). A person with their own address withdraws
   * from their own wallet instead.
   */
  async withdraw(ref: string, to: string): Promise<Withdrawal> {
    const record = await this.get(ref)
    if (record === undefined) throw new InvalidPayloadError('this person has no member address')
    if (record.sealedKey === undefined) throw new InvalidPayloadError('this member address is the person’s own: they withdraw from their own wallet')
    return this.chain.withdrawAllSigned(this.dataUnion, this.keyring.decrypt(record.sealedKey, this.context(ref)), to)
  }

  /**
   * Erasure without burning money: pays out to `payTo` first when the person gave one, then forgets
   * the wallet. What is left stays claimable, and the receipt says how. (Leaving the Data Union is
   * the membership stage's `part`, asked for by the caller alongside.)
   */
  async erase(ref: string, payTo?: string): Promise<ErasureReceipt | undefined> {
    const record = await this.get(ref)
    if (record === undefined) return undefined
    let paid: Withdrawal | undefined
    if (payTo !== undefined && record.sealedKey !== undefined) {
      const before = await this.chain.earnings(this.dataUnion, record.address)
      if (before.withdrawable > 0n) paid = await this.withdraw(ref, payTo)
    }
    const after = await this.chain.earnings(this.dataUnion, record.address)
    let claim: ErasureReceipt['claim'] = { kind: 'nothing' }
    if (after.withdrawable > 0n && record.sealedKey === undefined) claim = { kind: 'own-address', address: record.address }
    else if (after.withdrawable > 0n && record.sealedKey !== undefined) {
      // The key moves under a random code that names nobody: the account can go, the money stays claimable.
      const code = randomBytes(16).toString('base64url')
      const privateKey = this.keyring.decrypt(record.sealedKey, this.context(ref))
      const claimRef = `claim-${code}`
      await this.redis.set(this.key(claimRef), JSON.stringify({ ...record, sealedKey: this.keyring.encrypt(privateKey, this.context(claimRef)) }))
      claim = { kind: 'claim-code', code }
    }
    await this.redis.del(this.key(ref))
    return {
      address: record.address,
      paid: paid?.amount ?? 0n,
      ...(paid === undefined ? {} : { paidTo: paid.to, transactionHash: paid.transactionHash }),
      remaining: after.withdrawable,
      claim,
    }
  }

  /** Earnings left behind by an erased account, paid to `to` with the claim code its receipt gave; the code then stops working. */
  async claim(code: string, to: string): Promise<Withdrawal> {
    const paid = await this.withdraw(`claim-${code}`, to)
    await this.redis.del(this.key(`claim-${code}`))
    return paid
  }
}
