import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FakeGoogle } from '@fitstream/fake-google'
import { waitForRedis, type ServiceRuntime } from '@fitstream/shared'
import { APPLE_MORNING, writeZip } from '../../../packages/exports/test/fixtures.js'
import { silentLogger, testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { loadConfig } from '../src/config.js'
import { consentGroups } from '../src/consent.js'
import { createTokenService } from '../src/service.js'
import { SoftwareAuthenticator } from './software-authenticator.js'
import { ADMIN, WebClient, testEnv, waitFor } from './support.js'

/**
 * Accounts made with a passkey, through the routes a browser uses, with a software authenticator:
 * the whole life of such an account, and the attacks on its ceremonies, each refused with its code.
 */
const prefix = uniquePrefix('passkeys')
const { redis, cleanup } = testRedis(prefix)
const ORIGIN = 'http://fitstream.test'
const RP_ID = 'fitstream.test'
const admin = { authorization: `Bearer ${ADMIN}` }
let google: FakeGoogle
let service: ServiceRuntime
/** The groups holding steps and heart rate. */
let groups: string[]

beforeAll(async () => {
  google = await FakeGoogle.start()
  service = await createTokenService(loadConfig(testEnv(google, prefix)), silentLogger())
  await waitForRedis(service.redis)
  groups = consentGroups('fit')
    .filter((g) => g.dataTypes.includes('steps') || g.dataTypes.includes('heart_rate'))
    .map((g) => g.group)
})

afterAll(async () => {
  await service.close()
  await google.close()
  await cleanup()
})

/** A browser that opened the passkey page (so it holds the page's form token). */
async function openPasskeyPage(svc = service): Promise<WebClient> {
  const browser = new WebClient()
  const page = await browser.get(svc, '/passkey')
  expect(page.statusCode).toBe(200)
  browser.csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!
  return browser
}

type Options = { challenge: string; rp: { id?: string }; user: { id: string }; rpId?: string }

async function registrationOptions(browser: WebClient, svc = service): Promise<Options> {
  const response = await browser.postJson(svc, '/passkey/register/options', { csrf: browser.csrf, groups, individual: [], tz: 'Europe/Helsinki' })
  expect(response.statusCode).toBe(200)
  return response.json() as Options
}

async function signInOptions(browser: WebClient, svc = service): Promise<Options> {
  const response = await browser.postJson(svc, '/passkey/sign-in/options', { csrf: browser.csrf })
  expect(response.statusCode).toBe(200)
  return response.json() as Options
}

/** Makes an account with a new passkey; answers the browser (signed in), the authenticator and the account id. */
async function signUp(): Promise<{ browser: WebClient; authenticator: SoftwareAuthenticator; userId: string }> {
  const browser = await openPasskeyPage()
  const authenticator = new SoftwareAuthenticator()
  const made = await browser.postJson(service, '/passkey/register', authenticator.create(await registrationOptions(browser), { origin: ORIGIN }))
  expect(made.statusCode).toBe(201)
  const { userId, location } = made.json() as { userId: string; location: string }
  expect(location).toBe('/account?notice=passkey')
  return { browser, authenticator, userId }
}

function refusal(response: { statusCode: number; json: () => unknown }) {
  return { status: response.statusCode, code: (response.json() as { code?: string }).code }
}

describe('an account made with a passkey', () => {
  it('is made with the chosen consent and no Google link, imports an export whole, signs out and back in, and sees its report', async () => {
    const { browser, authenticator, userId } = await signUp()
    const account = await browser.get(service, '/account?notice=passkey')
    expect(account.statusCode).toBe(200)
    expect(account.body).toContain('Signed in with your passkey')
    expect(account.body).toContain('Your account is made and your passkey saved')
    expect(account.body).toContain('id="import-form"')
    const user = (await service.server.inject({ url: `/users/${userId}`, headers: admin })).json() as {
      dataTypes: string[]
      scopes: string[]
      timeZone: string
    }
    expect(user.dataTypes).toEqual(expect.arrayContaining(['steps', 'heart_rate']))
    expect(user.dataTypes).not.toContain('sleep')
    expect(user.scopes).toEqual([])
    expect(user.timeZone).toBe('Europe/Helsinki')

    // The person's own session uploads; with no Google reads to leave recent hours to, every consented hour is handed on.
    const upload = await service.server.inject({
      method: 'POST',
      url: `/users/${userId}/imports`,
      headers: { cookie: browser.cookie, 'content-type': 'application/zip' },
      payload: writeZip([{ name: 'apple_health_export/export.xml', data: APPLE_MORNING }]),
    })
    expect(upload.statusCode).toBe(202)
    type Status = { state: string; types?: Record<string, { released: number; leftToApi: number; notConsented: boolean }> }
    let status: Status | undefined
    await waitFor(async () => {
      status = (
        await service.server.inject({ url: `/users/${userId}/imports/${(upload.json() as { id: string }).id}`, headers: { cookie: browser.cookie } })
      ).json() as Status
      return status.state === 'done' || status.state === 'failed'
    })
    expect(status?.state).toBe('done')
    expect(status?.types?.steps).toMatchObject({ released: 2, leftToApi: 0, notConsented: false })
    expect(status?.types?.sleep).toMatchObject({ notConsented: true })

    const out = await browser.post(service, '/sign-out', new URLSearchParams({ csrf: /name="csrf" value="([^"]+)"/.exec(account.body)![1]! }).toString())
    expect(out.statusCode).toBe(303)
    expect((await browser.get(service, '/account')).statusCode).toBe(401)

    const again = await openPasskeyPage()
    const signedIn = await again.postJson(service, '/passkey/sign-in', authenticator.get(await signInOptions(again), { origin: ORIGIN }))
    expect(signedIn.statusCode).toBe(200)
    expect(signedIn.json()).toEqual({ userId, location: '/account' })
    expect((await again.get(service, '/account')).body).toContain('id="privacy-report"')
    const report = await again.get(service, `/users/${userId}/privacy`)
    expect(report.statusCode).toBe(200)
  })

  it('changes what it sells at once, with no trip to Google', async () => {
    const { browser } = await signUp()
    const page = await browser.get(service, '/account')
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!
    const sleepGroup = consentGroups('fit').find((g) => g.dataTypes.includes('sleep'))!.group
    const saved = await browser.post(
      service,
      '/account/consent',
      new URLSearchParams([...[...groups, sleepGroup].map((g): [string, string] => ['groups', g]), ['csrf', csrf]]).toString(),
    )
    expect(saved.statusCode).toBe(303)
    expect(saved.headers.location).toBe('/account?notice=consent')
    expect((await browser.get(service, '/account')).body).toMatch(/Selling<\/dt><dd>[^<]*sleep/)
  })

  it('is erased with its passkeys: the passkey signs nobody in afterwards', async () => {
    const { browser, authenticator, userId } = await signUp()
    const page = await browser.get(service, '/account')
    const erased = await browser.post(service, '/account/delete', new URLSearchParams({ csrf: /name="csrf" value="([^"]+)"/.exec(page.body)![1]! }).toString())
    expect(erased.statusCode).toBe(200)
    expect(await redis.keys(`${prefix}:passkey:credential:${authenticator.credentialId}`)).toEqual([])
    expect(await redis.keys(`${prefix}:passkey:user:${userId}`)).toEqual([])
    const later = await openPasskeyPage()
    const attempt = await later.postJson(service, '/passkey/sign-in', authenticator.get(await signInOptions(later), { origin: ORIGIN }))
    expect(refusal(attempt)).toEqual({ status: 401, code: 'FST_ERR_PASSKEY_UNKNOWN' })
  })

  it('is erased with its passkeys through the admin API too, and the receipt counts them', async () => {
    const { userId } = await signUp()
    const receipt = await service.server.inject({ method: 'DELETE', url: `/users/${userId}`, headers: admin })
    expect(receipt.statusCode).toBe(200)
    expect((receipt.json() as { erased: { passkeys: number } }).erased.passkeys).toBe(1)
  })
})

describe('attacks on the passkey ceremonies', () => {
  it('refuses a replayed sign-in: its challenge was used', async () => {
    const { authenticator } = await signUp()
    const browser = await openPasskeyPage()
    const assertion = authenticator.get(await signInOptions(browser), { origin: ORIGIN })
    expect((await browser.postJson(service, '/passkey/sign-in', assertion)).statusCode).toBe(200)
    expect(refusal(await browser.postJson(service, '/passkey/sign-in', assertion))).toEqual({ status: 400, code: 'FST_ERR_PASSKEY_CHALLENGE' })
    // Another browser posting the captured assertion fares no better.
    const thief = await openPasskeyPage()
    await signInOptions(thief)
    expect(refusal(await thief.postJson(service, '/passkey/sign-in', assertion))).toEqual({ status: 400, code: 'FST_ERR_PASSKEY_CHALLENGE' })
  })

  it('lets a challenge live 5 minutes, and not after it was answered', async () => {
    const { authenticator } = await signUp()
    const browser = await openPasskeyPage()
    const options = await signInOptions(browser)
    const key = `${prefix}:passkey:challenge:${options.challenge}`
    const ttl = await redis.ttl(key)
    expect(ttl).toBeGreaterThan(290)
    expect(ttl).toBeLessThanOrEqual(300)
    expect((await browser.postJson(service, '/passkey/sign-in', authenticator.get(options, { origin: ORIGIN }))).statusCode).toBe(200)
    expect(await redis.exists(key)).toBe(0)
    // An expired challenge is one Redis no longer has: answered like a used one.
    const late = await signInOptions(browser)
    await redis.del(`${prefix}:passkey:challenge:${late.challenge}`)
    expect(refusal(await browser.postJson(service, '/passkey/sign-in', authenticator.get(late, { origin: ORIGIN })))).toEqual({
      status: 400,
      code: 'FST_ERR_PASSKEY_CHALLENGE',
    })
  })

  it('refuses a challenge handed to another browser session, for sign-in and for sign-up', async () => {
    const { authenticator } = await signUp()
    const victim = await openPasskeyPage()
    const attacker = await openPasskeyPage()
    await signInOptions(attacker)
    const answered = await attacker.postJson(service, '/passkey/sign-in', authenticator.get(await signInOptions(victim), { origin: ORIGIN }))
    expect(refusal(answered)).toEqual({ status: 400, code: 'FST_ERR_PASSKEY_CHALLENGE' })
    expect((await attacker.get(service, '/account')).statusCode).toBe(401)

    const other = new SoftwareAuthenticator()
    const made = await attacker.postJson(service, '/passkey/register', other.create(await registrationOptions(victim), { origin: ORIGIN }))
    expect(refusal(made)).toEqual({ status: 400, code: 'FST_ERR_PASSKEY_CHALLENGE' })
  })

  it('refuses a response made on another origin, or for another RP ID', async () => {
    const { authenticator } = await signUp()
    const browser = await openPasskeyPage()
    const phished = await browser.postJson(
      service,
      '/passkey/sign-in',
      authenticator.get(await signInOptions(browser), { origin: 'https://fitstream.test.evil.example' }),
    )
    expect(refusal(phished)).toEqual({ status: 400, code: 'FST_ERR_PASSKEY_ORIGIN' })
    const otherRp = await browser.postJson(
      service,
      '/passkey/sign-in',
      authenticator.get(await signInOptions(browser), { origin: ORIGIN, rpId: 'evil.example' }),
    )
    expect(refusal(otherRp)).toEqual({ status: 400, code: 'FST_ERR_PASSKEY_ORIGIN' })
    const newcomer = await openPasskeyPage()
    const made = await newcomer.postJson(
      service,
      '/passkey/register',
      new SoftwareAuthenticator().create(await registrationOptions(newcomer), { origin: 'https://evil.example' }),
    )
    expect(refusal(made)).toEqual({ status: 400, code: 'FST_ERR_PASSKEY_ORIGIN' })
    // The refused attempts signed nobody in, and a genuine one still works.
    expect((await browser.get(service, '/account')).statusCode).toBe(401)
    expect(
      (await browser.postJson(service, '/passkey/sign-in', authenticator.get(await signInOptions(browser), { origin: ORIGIN, rpId: RP_ID }))).statusCode,
    ).toBe(200)
  })

  it("refuses another account's credential: a user handle that is not the passkey's, a passkey registered twice, a key that is not the passkey's", async () => {
    const alice = await signUp()
    const mallory = await signUp()
    const browser = await openPasskeyPage()
    const posing = await browser.postJson(
      service,
      '/passkey/sign-in',
      mallory.authenticator.get(await signInOptions(browser), { origin: ORIGIN, userHandle: alice.authenticator.userHandle }),
    )
    expect(refusal(posing)).toEqual({ status: 403, code: 'FST_ERR_PASSKEY_WRONG_ACCOUNT' })

    // Mallory's key signing for Alice's credential id (and handle): the stored key is Alice's, so the signature fails.
    const forged = mallory.authenticator.get(await signInOptions(browser), { origin: ORIGIN, userHandle: alice.authenticator.userHandle })
    forged.id = forged.rawId = alice.authenticator.credentialId
    expect(refusal(await browser.postJson(service, '/passkey/sign-in', forged))).toEqual({ status: 400, code: 'FST_ERR_PASSKEY_INVALID' })

    // Registering Alice's credential id again, for a new account, is refused.
    const copy = new SoftwareAuthenticator()
    const registration = copy.create(await registrationOptions(browser), { origin: ORIGIN })
    const attestation = Buffer.from(registration.response.attestationObject, 'base64url')
    const at = attestation.indexOf(Buffer.from(copy.credentialId, 'base64url'))
    Buffer.from(alice.authenticator.credentialId, 'base64url').copy(attestation, at)
    registration.id = registration.rawId = alice.authenticator.credentialId
    registration.response.attestationObject = attestation.toString('base64url')
    expect(refusal(await browser.postJson(service, '/passkey/register', registration))).toEqual({ status: 403, code: 'FST_ERR_PASSKEY_WRONG_ACCOUNT' })
    expect((await browser.get(service, '/account')).statusCode).toBe(401)
  })

  it('refuses a cloned authenticator whose counter did not go up', async () => {
    const { authenticator } = await signUp()
    const browser = await openPasskeyPage()
    expect(
      (await browser.postJson(service, '/passkey/sign-in', authenticator.get(await signInOptions(browser), { origin: ORIGIN, counter: 5 }))).statusCode,
    ).toBe(200)
    const clone = await browser.postJson(service, '/passkey/sign-in', authenticator.get(await signInOptions(browser), { origin: ORIGIN, counter: 5 }))
    expect(refusal(clone)).toEqual({ status: 400, code: 'FST_ERR_PASSKEY_REPLAY' })
  })

  it('refuses options to a page it did not serve, and a sign-up that sells nothing', async () => {
    const browser = await openPasskeyPage()
    expect((await browser.postJson(service, '/passkey/sign-in/options', { csrf: 'x'.repeat(32) })).statusCode).toBe(403)
    const stranger = new WebClient()
    expect((await stranger.postJson(service, '/passkey/register/options', { csrf: browser.csrf, groups })).statusCode).toBe(403)
    expect(refusal(await browser.postJson(service, '/passkey/register/options', { csrf: browser.csrf, groups: [] }))).toEqual({
      status: 400,
      code: 'FST_ERR_VALIDATION',
    })
  })
})

describe('the passkey ceremonies’ rate limit', () => {
  it('answers 429 past RATE_LIMIT_CALLBACK_PER_MINUTE from one address, as Google’s callback does', async () => {
    const limitedPrefix = uniquePrefix('passkeys-limit')
    const limited = testRedis(limitedPrefix)
    const svc = await createTokenService(loadConfig(testEnv(google, limitedPrefix, { RATE_LIMIT_CALLBACK_PER_MINUTE: '3' })), silentLogger())
    try {
      await waitForRedis(svc.redis)
      const guesser = new WebClient()
      const authenticator = new SoftwareAuthenticator()
      authenticator.create({ challenge: 'AAAAAAAAAAAAAAAAAAAAAA', rp: { id: RP_ID }, user: { id: 'AAAA' } }, { origin: ORIGIN })
      const answers = []
      for (let i = 0; i < 4; i++)
        answers.push(
          refusal(
            await guesser.postJson(svc, '/passkey/sign-in', authenticator.get({ challenge: `guess${i}-AAAAAAAAAAAAAAAA`, rpId: RP_ID }, { origin: ORIGIN })),
          ),
        )
      // Three answered on their merits (no such challenge), the fourth not looked at.
      expect(answers.slice(0, 3)).toEqual(Array(3).fill({ status: 400, code: 'FST_ERR_PASSKEY_CHALLENGE' }))
      expect(answers[3]).toEqual({ status: 429, code: 'FST_ERR_RATE_LIMITED' })
    } finally {
      await svc.close()
      await limited.cleanup()
    }
  })
})
