import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Contract, Interface, JsonRpcProvider, Wallet, parseUnits } from 'ethers'
import { tokenABI } from '@streamr/network-contracts'
import { Keyring, MembershipQueues, PRIVACY_TOTAL_FIELDS, createLogger, createRedis, privacyKey } from '@fitstream/shared'
import { freePort, deployDataUnionContracts, loadDataUnionArtifacts, type LocalDataUnionContracts } from '@fitstream/streamr-local'
import { PublisherHarness } from '../services/publisher/test/harness.js'
import { DATA_UNION_ABI, DATA_UNION_FACTORY_ABI, DataUnionChain, FEE_ORACLE_ABI } from '../services/publisher/src/data-union.js'
import { MemberWallets } from '../services/publisher/src/member-wallets.js'
import { createMembershipWorker } from '../services/publisher/src/data-union-membership.js'
import { EarningsHistory, MembershipClient, memberRefOf } from '../services/token-service/src/earnings.js'
import { earningsSection, withEarningsSection } from '../services/token-service/src/earnings-page.js'
import { accountPage } from '../services/token-service/src/html.js'
import type { User } from '../services/token-service/src/users.js'
import { CHROMIUM, SCREENSHOTS, launchChromium } from '../services/token-service/test/support.js'
import { readEarnings } from '../services/token-service/src/earnings-routes.js'
import { MemberEnrolment, describeEarningsOnErasure } from '../services/token-service/src/earnings-membership.js'
import { redisUrl, testRedis, uniquePrefix } from './helpers.js'

/**
 * People get paid: on a local chain with the Hub and the Data Union contracts, the operator creates
 * the product's Data Union with `fitstream du create` and lists the product with the Data Union as
 * its beneficiary; the membership service joins three people (through the membership queue, across
 * a chain outage); a buyer pays through MarketplaceV4; each member's earnings are their equal share
 * after the admin and protocol fees, to the token's smallest unit; one withdraws to their own
 * address without holding gas, one leaves and stops accruing.
 */
const prefix = uniquePrefix('data-union')
const { redis, cleanup } = testRedis(prefix)
const MEMBERSHIP_MAIN = fileURLToPath(new URL('../services/publisher/dist/data-union-main.js', import.meta.url))
const ADMIN_FEE = '0.1'
const PRICE_PER_SECOND = '0.001'
const SECONDS = 3_600

let harness: PublisherHarness
let contracts: LocalDataUnionContracts
let chain: JsonRpcProvider
let token: Contract
let dataUnion: string
let projectId: string
let membership: { child: ChildProcess; lines: string[] } | undefined
let operator: DataUnionChain
const queues = new MembershipQueues({ connection: redis, prefix, retry: { attempts: 30, backoffMs: 200 }, logger: createLogger('test', 'silent') })
/** Member keys FitStream creates and keeps encrypted, for people who give no address of their own. */
const memberKeyBytes = randomBytes(32)
const memberKeys = new Keyring([['test', memberKeyBytes]])
const INTERNAL_TOKEN = randomBytes(24).toString('hex')
let membershipUrl: string
let wallets: MemberWallets
/** The three people, by the reference the token service would give (a keyed hash of their account id). */
const REF_KEY = randomBytes(32)
const [A, B, C, D] = ['user-a', 'user-b', 'user-c', 'user-d'].map((id) => memberRefOf(id, REF_KEY)) as [string, string, string, string]
const people = [A, B, C]
let members: { address: string }[]
/** Where the first person wants their money: an address of their own that never held anything. */
const ownAddress = Wallet.createRandom().address

beforeAll(async () => {
  harness = await PublisherHarness.start({ hub: true })
  const { network } = harness
  contracts = await deployDataUnionContracts({
    rpcUrl: network.rpcUrl,
    chainId: network.chainId,
    deployerPrivateKey: network.accounts[0]!.privateKey,
    tokenAddress: network.hub!.tokenAddress,
    protocolBeneficiary: network.accounts[9]!.address,
  })
  chain = new JsonRpcProvider(network.rpcUrl, network.chainId, { staticNetwork: true })
  token = new Contract(network.hub!.tokenAddress, tokenABI, chain)
  operator = new DataUnionChain({ rpcUrl: network.rpcUrl, chainId: network.chainId, operatorPrivateKey: harness.seller.privateKey, timeoutMs: 5_000 })
}, 180_000)

afterAll(async () => {
  membership?.child.kill('SIGTERM')
  operator?.destroy()
  chain?.destroy()
  await harness?.stop()
  await queues.close()
  await cleanup()
})

const duEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
  DATA_UNION_FACTORY_ADDRESS: contracts.factoryAddress,
  DATA_UNION_ADMIN_FEE: ADMIN_FEE,
  ...extra,
})

interface Status {
  address: string
  activeMembers: number
  inactiveMembers: number
  totalRevenue: string
  totalEarnings: string
  totalAdminFees: string
  totalProtocolFees: string
  totalWithdrawn: string
  unpaid: string
  adminFee: string
  protocolFee: string
  token: { symbol: string }
}
const status = async (): Promise<Status> =>
  JSON.parse((await harness.cli(['du', 'status', '--json'], duEnv({ DATA_UNION_ADDRESS: dataUnion }))).stdout) as Status
const balanceOf = (address: string): Promise<bigint> => token.getFunction('balanceOf')(address) as Promise<bigint>
const cliError = (args: string[], env: Record<string, string>): Promise<string> =>
  harness.cli(args, env).then(
    () => 'succeeded',
    (error: { stderr: string }) => error.stderr,
  )

/**
 * The account page as a person sees it, with the earnings just read from the chain, in Debian's
 * Chromium (skipped where it is absent); saved as docs/screenshots/earnings.png with UPDATE_SCREENSHOTS=1.
 */
async function screenshotAccountPage(report: Awaited<ReturnType<typeof readEarnings>>): Promise<void> {
  const day = Date.UTC(2026, 10, 2)
  const user: User = {
    id: 'user-a',
    state: 'active',
    dataTypes: ['steps', 'heart_rate'],
    individualTypes: [],
    createdAt: day - 86_400_000,
    fetchedUntil: day,
    lastSyncAt: day,
    lastSyncStatus: 'up_to_date',
    lastError: undefined,
    scopes: [],
    timeZone: 'Europe/Helsinki',
    consentUpdatedAt: day - 86_400_000,
    backfill: undefined,
  }
  // A week of history, as the chart shows it after a few sales.
  const history = [
    { day: '2026-10-27', total: '0.0' },
    { day: '2026-10-29', total: '0.356' },
    { day: '2026-10-31', total: '0.712' },
    { day: '2026-11-02', total: report.total },
  ]
  const html = withEarningsSection(accountPage({ user, csrfToken: 'csrf', nextSyncAt: day + 3_600_000, api: 'health' }), { ...report, history }, 'csrf')
  const browser = await launchChromium()
  try {
    const page = await (await browser.newContext({ viewport: { width: 900, height: 1000 } })).newPage()
    await page.setContent(html)
    const section = page.locator('#earnings')
    expect(await section.innerText()).toContain('1.068 TDATA ready to withdraw; 1.068 TDATA earned in all.')
    const chart = await section.locator('svg').boundingBox()
    expect(chart?.width).toBeGreaterThan(200)
    expect(chart?.height).toBeGreaterThan(50)
    mkdirSync(SCREENSHOTS, { recursive: true })
    await section.screenshot({ path: `${SCREENSHOTS}earnings.png` })
  } finally {
    await browser.close()
  }
}

/** The address with one letter's case flipped: the typo a checksum exists to catch. */
function flipCase(address: string): string {
  const i = address.slice(2).search(/[a-fA-F]/) + 2
  const c = address[i]!
  return `${address.slice(0, i)}${c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()}${address.slice(i + 1)}`
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; membership service said:\n${membership?.lines.slice(-20).join('\n')}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

/** The membership service's /internal API, as the token service calls it. */
async function api(method: string, path: string, body?: object, token = INTERNAL_TOKEN): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${membershipUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return { status: response.status, json: (await response.json()) as Record<string, unknown> }
}

function startMembershipService(membershipPort: string): { child: ChildProcess; lines: string[] } {
  const env = harness.env(
    duEnv({
      DATA_UNION_ADDRESS: dataUnion,
      REDIS_URL: redisUrl(),
      QUEUE_PREFIX: prefix,
      RETRY_BACKOFF_MS: '200',
      MEMBERSHIP_ATTEMPTS: '30',
      MEMBER_KEYS: `test:${memberKeyBytes.toString('base64')}`,
      INTERNAL_API_TOKEN: INTERNAL_TOKEN,
      HTTP_HOST: '127.0.0.1',
      MEMBERSHIP_HTTP_PORT: membershipPort,
      DATA_UNION_CHAIN_TIMEOUT_MS: '2000',
    }),
  )
  const child = spawn(process.execPath, [MEMBERSHIP_MAIN], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  for (const stream of [child.stdout, child.stderr])
    stream.on('data', (chunk: Buffer) =>
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      ),
    )
  return { child, lines }
}

describe('a Data Union behind the product', () => {
  it('declares only functions and events the published contracts have, with the published signatures', () => {
    const artifacts = loadDataUnionArtifacts()
    const pairs: [readonly string[], readonly unknown[]][] = [
      [DATA_UNION_ABI, artifacts.DataUnionTemplate.abi],
      [DATA_UNION_FACTORY_ABI, artifacts.DataUnionFactory.abi],
      [FEE_ORACLE_ABI, artifacts.DefaultFeeOracle.abi],
    ]
    for (const [ours, published] of pairs) {
      const theirs = new Interface(published as never)
      const signatures = new Set<string>()
      theirs.forEachFunction((f) => signatures.add(`${f.format('sighash')}:${f.outputs.map((o) => o.format('sighash')).join(',')}`))
      theirs.forEachEvent((e) => signatures.add(`event ${e.format('sighash')}:${e.inputs.map((i) => String(i.indexed === true)).join(',')}`))
      const mine = new Interface(ours as never)
      mine.forEachFunction((f) =>
        expect(signatures, f.format('full')).toContain(`${f.format('sighash')}:${f.outputs.map((o) => o.format('sighash')).join(',')}`),
      )
      mine.forEachEvent((e) =>
        expect(signatures, e.format('full')).toContain(`event ${e.format('sighash')}:${e.inputs.map((i) => String(i.indexed === true)).join(',')}`),
      )
    }
  })

  it('du create deploys one through the factory with the admin fee from config; du status reads it back', async () => {
    const created = JSON.parse((await harness.cli(['du', 'create', '--name', 'FitStream steps', '--json'], duEnv())).stdout) as {
      address: string
      adminFee: string
      protocolFee: string
      token: { address: string }
    }
    expect(created).toMatchObject({ adminFee: ADMIN_FEE, protocolFee: '0.01', token: { address: harness.network.hub!.tokenAddress } })
    dataUnion = created.address
    expect(await status()).toMatchObject({
      address: dataUnion,
      activeMembers: 0,
      totalRevenue: '0.0',
      adminFee: ADMIN_FEE,
      protocolFee: '0.01',
      token: { symbol: 'TDATA' },
    })
    const text = (await harness.cli(['du', 'status'], duEnv({ DATA_UNION_ADDRESS: dataUnion }))).stdout
    expect(text).toContain('members: 0 active, 0 parted')
    expect(text).toContain('admin 0.0 TDATA (10.0 %), protocol 0.0 TDATA (1.0 %)')
  }, 120_000)

  it('refuses what is not a Data Union, and malformed or checksum-wrong addresses, by code', async () => {
    const notADataUnion = await cliError(['du', 'status', '--data-union', harness.network.hub!.tokenAddress], duEnv())
    expect(notADataUnion).toContain('FST_ERR_NOT_A_DATA_UNION')
    const nothingThere = await cliError(['du', 'status', '--data-union', Wallet.createRandom().address], duEnv())
    expect(nothingThere).toContain('FST_ERR_NOT_A_DATA_UNION')
    const flipped = flipCase(dataUnion)
    expect(await cliError(['du', 'status', '--data-union', flipped], duEnv())).toContain('FST_ERR_INVALID_ADDRESS')
    expect(await cliError(['du', 'status', '--data-union', '0x1234'], duEnv())).toContain('FST_ERR_INVALID_ADDRESS')
  }, 60_000)

  it('lists the product on the Hub with the Data Union as its beneficiary', async () => {
    await harness.cli(['streams', 'provision', '--types', 'steps'])
    const args = ['hub', 'create-project', '--types', 'steps', '--name', 'FitStream steps', '--price-per-second', PRICE_PER_SECOND]
    const created = JSON.parse(
      (await harness.cli([...args, '--token', harness.network.hub!.tokenAddress, '--beneficiary', dataUnion, '--min-subscription', '60', '--json'])).stdout,
    ) as { projectId: string }
    projectId = created.projectId
    const hub = JSON.parse((await harness.cli(['hub', 'status', '--project-id', projectId, '--json'])).stdout) as { payment: { beneficiary: string }[] }
    expect(hub.payment).toEqual([expect.objectContaining({ beneficiary: dataUnion })])
  }, 180_000)

  it('gives each person a member address whose key is kept encrypted, the same one every time', async () => {
    wallets = new MemberWallets(redis, prefix, memberKeys, operator, dataUnion)
    members = await Promise.all(people.map((ref) => wallets.ensure(ref)))
    expect(new Set(members.map((m) => m.address)).size).toBe(3)
    expect((await wallets.ensure(A)).address).toBe(members[0]!.address)
    const stored = (await redis.get(`${prefix}:membership:wallet:${A}`))!
    expect(JSON.parse(stored)).toMatchObject({ kind: 'custodial', sealedKey: expect.stringMatching(/^v1\.test\./) })
    expect(stored).not.toMatch(/0x[0-9a-f]{64}/)
    // A person who gives their own address: a checksum typo is refused, a good address kept as given.
    const own = Wallet.createRandom().address
    await expect(wallets.ensure(D, flipCase(own))).rejects.toMatchObject({ code: 'FST_ERR_INVALID_ADDRESS' })
    expect(await wallets.ensure(D, own)).toEqual({ address: own, kind: 'own' })
  })

  it('joins people through the membership queue; a chain outage leaves them queued, and they join once it is back, once', async () => {
    const port = await freePort()
    membershipUrl = `http://127.0.0.1:${port}`
    membership = startMembershipService(String(port))
    await waitFor('the membership service', async () => membership!.lines.some((l) => l.includes('membership service')), 30_000)
    harness.network.freezeChain()
    try {
      await queues.request(
        'join',
        members.map((m) => m.address),
        'released-1',
      )
      // Several attempts time out while the chain is frozen: the request stays queued, nothing is dead-lettered.
      await waitFor('a failed attempt', async () => membership!.lines.some((l) => l.includes('will retry')), 30_000)
      const job = await queues.queue.getJob('released-1-0')
      expect(await job?.getState()).toMatch(/^(active|delayed|waiting)$/)
      expect(await queues.deadLettered()).toEqual([])
    } finally {
      harness.network.thawChain()
    }
    await waitFor('the join to complete', async () => (await (await queues.queue.getJob('released-1-0'))?.getState()) === 'completed', 60_000)
    // The same people released again (a second sale of their data, a replayed request): no one is added twice.
    await queues.request(
      'join',
      members.map((m) => m.address),
      'released-2',
    )
    await waitFor('the repeated join', async () => (await (await queues.queue.getJob('released-2-0'))?.getState()) === 'completed', 30_000)
    expect((await queues.queue.getJob('released-2-0'))?.returnvalue).toMatchObject({ joined: [], unchanged: members.map((m) => m.address) })
    expect(await status()).toMatchObject({ activeMembers: 3, inactiveMembers: 0 })
    expect(await queues.deadLettered()).toEqual([])
  }, 180_000)

  it('sends a batch the chain refuses to membership-dlq at once, with its code, and nothing else', async () => {
    // A worker whose Data Union is not one (the token's address): the contract refuses every call.
    const dlqPrefix = `${prefix}-refused`
    const workerRedis = createRedis(redisUrl(), 'worker', 'test-membership-worker')
    const refusedQueues = new MembershipQueues({
      connection: redis,
      prefix: dlqPrefix,
      retry: { attempts: 5, backoffMs: 100 },
      logger: createLogger('test', 'silent'),
    })
    const worker = createMembershipWorker({
      chain: operator,
      dataUnion: harness.network.hub!.tokenAddress,
      connection: workerRedis,
      redis,
      queues: refusedQueues,
      prefix: dlqPrefix,
      logger: createLogger('test', 'silent'),
    })
    try {
      void worker.run()
      const someone = Wallet.createRandom().address
      await refusedQueues.request('join', [someone], 'refused')
      await waitFor('the dead letter', async () => (await refusedQueues.deadLettered()).length > 0, 30_000)
      expect(await refusedQueues.deadLettered()).toEqual([
        expect.objectContaining({
          job: { action: 'join', members: [someone] },
          error: expect.objectContaining({ code: 'FST_ERR_CHAIN_REVERTED' }),
          attemptsMade: 1,
        }),
      ])
    } finally {
      await worker.close()
      await refusedQueues.close()
      workerRedis.disconnect()
    }
  }, 60_000)

  let firstSale: bigint
  it('a purchase through MarketplaceV4 pays each member price x (1 - admin fee - protocol fee) / 3, to the smallest unit', async () => {
    const buyer = harness.buyer
    const before = await balanceOf(buyer.address)
    await harness.buyOnHub(buyer.privateKey, projectId, SECONDS)
    const price = parseUnits(PRICE_PER_SECOND, 18) * BigInt(SECONDS)
    expect(before - (await balanceOf(buyer.address))).toBe(price)
    firstSale = price
    const adminFee = (price * parseUnits(ADMIN_FEE, 18)) / 10n ** 18n
    const protocolFee = (price * contracts.protocolFee) / 10n ** 18n
    const share = (price - adminFee - protocolFee) / 3n
    for (const member of members) {
      expect(await operator.earnings(dataUnion, member.address)).toMatchObject({ isMember: true, withdrawable: share, total: share, withdrawn: 0n })
    }
    expect(share).toBe(1_068_000_000_000_000_000n) // 3.6 TDATA x 0.89 / 3
    expect(await status()).toMatchObject({ totalRevenue: '3.6', totalAdminFees: '0.36', totalProtocolFees: '0.036', totalEarnings: '3.204', unpaid: '3.6' })
  }, 120_000)

  it('a member withdraws everything to their own address, the operator paying the gas; nothing is left to withdraw twice', async () => {
    const [first] = members
    expect(await chain.getBalance(first!.address)).toBe(0n)
    // What the token service shows on the account page, and asks for when the person withdraws.
    expect(await api('GET', `/internal/members/${A}/earnings`)).toEqual({
      status: 200,
      json: {
        address: first!.address,
        isMember: true,
        withdrawable: '1.068',
        total: '1.068',
        withdrawn: '0.0',
        token: 'TDATA',
        adminFee: '0.1',
        protocolFee: '0.01',
      },
    })
    expect((await api('GET', `/internal/members/${A}/earnings`, undefined, 'wrong')).status).toBe(401)
    // The token service's side: GET /users/:id/earnings and the account page read the same, and keep a daily history for the chart.
    const report = await readEarnings(
      {
        membership: new MembershipClient(membershipUrl, INTERNAL_TOKEN),
        history: new EarningsHistory(redis, prefix),
        refKey: REF_KEY,
        now: () => new Date(Date.UTC(2026, 10, 2, 12)),
        logger: createLogger('test', 'silent'),
      },
      'user-a',
    )
    expect(report).toMatchObject({ withdrawable: '1.068', total: '1.068', token: 'TDATA', history: [{ day: '2026-11-02', total: '1.068' }] })
    const section = earningsSection(report, 'csrf')
    expect(section).toContain('<strong>1.068 TDATA</strong> ready to withdraw; 1.068 TDATA earned in all')
    expect(section).toContain("FitStream's fee of 10 % and Streamr's fee of 1 %")
    expect(section).toMatch(/<svg[^>]*role="img"/)
    if (existsSync(CHROMIUM)) await screenshotAccountPage(report)
    expect(await api('POST', `/internal/members/${A}/withdrawals`, { to: '0x1234' })).toMatchObject({
      status: 400,
      json: { code: 'FST_ERR_INVALID_ADDRESS' },
    })
    const withdrawal = await api('POST', `/internal/members/${A}/withdrawals`, { to: ownAddress })
    expect(withdrawal).toMatchObject({ status: 200, json: { amount: '1.068', to: ownAddress, token: 'TDATA' } })
    const share = (firstSale - firstSale / 10n - firstSale / 100n) / 3n
    expect(await balanceOf(ownAddress)).toBe(share)
    expect(await operator.earnings(dataUnion, first!.address)).toMatchObject({ withdrawable: 0n, total: share, withdrawn: share })
    await expect(wallets.withdraw(A, ownAddress)).rejects.toMatchObject({ code: 'FST_ERR_NOTHING_TO_WITHDRAW' })
    expect(await api('POST', `/internal/members/${A}/withdrawals`, { to: ownAddress })).toMatchObject({
      status: 409,
      json: { code: 'FST_ERR_NOTHING_TO_WITHDRAW' },
    })
    await expect(wallets.withdraw(B, flipCase(ownAddress))).rejects.toMatchObject({ code: 'FST_ERR_INVALID_ADDRESS' })
    await expect(wallets.withdraw(B, '0x0')).rejects.toMatchObject({ code: 'FST_ERR_INVALID_ADDRESS' })
  }, 60_000)

  it('a member who withdraws and then deletes their account is parted and stops accruing; the others share the next sale', async () => {
    const leaving = members[1]!
    const payout = Wallet.createRandom().address
    // Deleting the account: offered a withdrawal first, which pays everything out; the receipt says so.
    const receipt = await wallets.erase(B, payout)
    const firstShareOfB = (firstSale - firstSale / 10n - firstSale / 100n) / 3n
    expect(receipt).toMatchObject({ address: leaving.address, paid: firstShareOfB, paidTo: payout, remaining: 0n, claim: { kind: 'nothing' } })
    expect(await balanceOf(payout)).toBe(firstShareOfB)
    expect(await wallets.get(B)).toBeUndefined()
    await queues.request('part', [leaving.address], 'erased-1')
    await waitFor('the part to complete', async () => (await (await queues.queue.getJob('erased-1-0'))?.getState()) === 'completed', 60_000)
    expect(await status()).toMatchObject({ activeMembers: 2, inactiveMembers: 1 })

    const secondBuyer = harness.network.accounts[3]!
    await harness.buyOnHub(secondBuyer.privateKey, projectId, SECONDS)
    const price = parseUnits(PRICE_PER_SECOND, 18) * BigInt(SECONDS)
    const secondShare = (price - price / 10n - price / 100n) / 2n
    const firstShare = (firstSale - firstSale / 10n - firstSale / 100n) / 3n
    expect(await operator.earnings(dataUnion, leaving.address)).toMatchObject({ isMember: false, withdrawable: 0n, total: firstShare })
    expect(await operator.earnings(dataUnion, members[2]!.address)).toMatchObject({ isMember: true, withdrawable: firstShare + secondShare })
    expect(await operator.earnings(dataUnion, members[0]!.address)).toMatchObject({ withdrawable: secondShare, total: firstShare + secondShare })
    expect(await queues.deadLettered()).toEqual([])

    // Someone deleting their account without taking the money: it stays claimable with the receipt's code.
    const receipt3 = await wallets.erase(C)
    expect(receipt3).toMatchObject({ paid: 0n, remaining: firstShare + secondShare, claim: { kind: 'claim-code' } })
    expect(await wallets.get(C)).toBeUndefined()
    const later = Wallet.createRandom().address
    const claimed = await wallets.claim((receipt3!.claim as { code: string }).code, later)
    expect(claimed.amount).toBe(firstShare + secondShare)
    expect(await balanceOf(later)).toBe(firstShare + secondShare)
    // The operator's key never appears in what the membership service writes.
    expect(membership!.lines.join('\n')).not.toContain(harness.seller.privateKey.slice(2))
  }, 120_000)

  it('the token service enrols people once their data is released, in one batch, and an erasure pays out first and parts them', async () => {
    let clock = Date.UTC(2026, 10, 3)
    const enrolment = new MemberEnrolment({
      redis,
      prefix,
      membership: new MembershipClient(membershipUrl, INTERNAL_TOKEN),
      queues,
      refKey: REF_KEY,
      logger: createLogger('test', 'silent'),
      now: () => (clock += 1_000),
    })
    expect(await enrolment.afterSync('user-e')).toBe('nothing-released')
    // What the anonymiser's ledger holds once it has released some of the people's records.
    await redis.hset(privacyKey(prefix, 'user-e'), PRIVACY_TOTAL_FIELDS.recordsReleased, '5')
    await redis.hset(privacyKey(prefix, 'user-f'), PRIVACY_TOTAL_FIELDS.cohortContributions, '2')
    expect(await enrolment.afterSync('user-e')).toBe('enrolled')
    expect(await enrolment.afterSync('user-f')).toBe('enrolled')
    expect(await enrolment.afterSync('user-e')).toBe('already')
    const addressOf = async (userId: string) => (await api('GET', `/internal/members/${memberRefOf(userId, REF_KEY)}/earnings`)).json['address'] as string
    const [address, other] = [await addressOf('user-e'), await addressOf('user-f')]
    // Both joins go in one batch, one transaction; nothing is left pending.
    expect(await enrolment.flush()).toBe(2)
    expect(await enrolment.flush()).toBe(0)
    await waitFor(
      'the joins',
      async () => (await operator.earnings(dataUnion, address)).isMember && (await operator.earnings(dataUnion, other)).isMember,
      60_000,
    )
    const batch = (await queues.queue.getJobs(['completed'])).find((job) => job.data.members.includes(address))!
    expect(batch.data.members.sort()).toEqual([address, other].sort())
    expect(batch.returnvalue).toMatchObject({ joined: expect.arrayContaining([address, other]), transactionHash: expect.stringMatching(/^0x/) })
    // A, C (whose wallet went without a part: the membership service's erasure alone leaves the Data Union to the caller), E and F.
    expect(await status()).toMatchObject({ activeMembers: 4, inactiveMembers: 1 })

    await harness.buyOnHub(harness.network.accounts[4]!.privateKey, projectId, SECONDS)
    const price = parseUnits(PRICE_PER_SECOND, 18) * BigInt(SECONDS)
    const share = (price - price / 10n - price / 100n) / 4n
    const payTo = Wallet.createRandom().address
    const receipt = await enrolment.erase('user-e', payTo)
    expect(receipt).toEqual({ paid: '0.801', paidTo: payTo, remaining: '0.0', token: 'TDATA', claim: { kind: 'nothing' } })
    expect(await balanceOf(payTo)).toBe(share)
    expect(describeEarningsOnErasure(receipt!)).toBe(`0.801 TDATA of your earnings were paid to ${payTo}. Nothing remains to claim.`)
    await waitFor('the part', async () => !(await operator.earnings(dataUnion, address)).isMember, 60_000)
    expect(await operator.earnings(dataUnion, other)).toMatchObject({ isMember: true, withdrawable: share })
    expect(await queues.deadLettered()).toEqual([])
  }, 120_000)
})
