import { createHash, createPublicKey, createVerify, randomBytes, type JsonWebKey } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { google as googleapis } from 'googleapis'
import { FakeGoogle } from '../src/index.js'

/** The authorization-code flow at the fake, through the real googleapis client where one is involved. */
let fake: FakeGoogle
const REDIRECT = 'http://app.test/oauth/callback'
const SCOPES = ['https://www.googleapis.com/auth/fitness.activity.read', 'https://www.googleapis.com/auth/fitness.sleep.read']

beforeAll(async () => {
  fake = await FakeGoogle.start()
})

afterAll(async () => {
  await fake.close()
})

function client() {
  return new googleapis.auth.OAuth2({
    clientId: fake.clientId,
    clientSecret: fake.clientSecret,
    redirectUri: REDIRECT,
    endpoints: { oauth2TokenUrl: fake.tokenUrl, oauth2AuthBaseUrl: fake.authorizeUrl, oauth2RevokeUrl: fake.revokeUrl },
  })
}

function pkce() {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

/** Opens the consent screen and answers it; returns the redirect back to the app. */
async function authorize(params: Record<string, string>, answer: { decision?: string; account?: string; scopes?: string[] } = {}): Promise<URL> {
  const url = new URL(fake.authorizeUrl)
  for (const [k, v] of Object.entries({ client_id: fake.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: SCOPES.join(' '), ...params })) {
    url.searchParams.set(k, v)
  }
  const page = await fetch(url)
  expect(page.status).toBe(200)
  const html = await page.text()
  const form = new URLSearchParams({
    request_id: /name="request_id" value="([^"]+)"/.exec(html)![1]!,
    decision: answer.decision ?? 'allow',
    account: answer.account ?? `acct-${randomBytes(4).toString('hex')}`,
  })
  for (const s of answer.scopes ?? SCOPES) form.append('scope', s)
  const response = await fetch(fake.authorizeUrl, { method: 'POST', body: form, redirect: 'manual' })
  expect(response.status).toBe(302)
  return new URL(response.headers.get('location')!)
}

describe('the consent screen', () => {
  it('lists the requested scopes with Allow and Deny, and refuses malformed requests with an error page', async () => {
    const url = new URL(fake.authorizeUrl)
    url.search = new URLSearchParams({ client_id: fake.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: SCOPES.join(' ') }).toString()
    const html = await (await fetch(url)).text()
    expect(html).toContain('See your physical activity data')
    expect(html).toContain('See your sleep data')
    expect(html).toMatch(/value="allow"/)
    expect(html).toMatch(/value="deny"/)
    for (const [param, value, error] of [
      ['client_id', 'someone-else', 'invalid_client'],
      ['redirect_uri', 'javascript:alert(1)', 'redirect_uri_mismatch'],
      ['scope', 'https://mail.google.com/', 'invalid_scope'],
      ['code_challenge', 'short', 'invalid_request'],
    ] as const) {
      const bad = new URL(url)
      bad.searchParams.set(param, value)
      const response = await fetch(bad)
      expect(response.status).toBe(400)
      expect(await response.text()).toContain(error)
    }
  })

  it('redirects with error=access_denied and the state on Deny', async () => {
    const back = await authorize({ state: 'xyz' }, { decision: 'deny' })
    expect(back.searchParams.get('error')).toBe('access_denied')
    expect(back.searchParams.get('state')).toBe('xyz')
    expect(back.searchParams.get('code')).toBeNull()
  })
})

describe('the authorization-code grant', () => {
  it('exchanges a code once, with the right PKCE verifier, for an offline grant of the scopes consented to', async () => {
    const { verifier, challenge } = pkce()
    const back = await authorize({ state: 's1', access_type: 'offline', code_challenge: challenge, code_challenge_method: 'S256' }, { scopes: [SCOPES[0]!] })
    expect(back.searchParams.get('state')).toBe('s1')
    const { tokens } = await client().getToken({ code: back.searchParams.get('code')!, codeVerifier: verifier })
    expect(tokens.refresh_token).toMatch(/^1\/\/09/)
    expect(tokens.scope).toBe(SCOPES[0])
    // The refresh token works like any other.
    const c = client()
    c.setCredentials({ refresh_token: tokens.refresh_token! })
    expect((await c.refreshAccessToken()).credentials.access_token).toMatch(/^ya29\./)
    // A replayed code is refused.
    await expect(client().getToken({ code: back.searchParams.get('code')!, codeVerifier: verifier })).rejects.toMatchObject({
      response: { data: { error: 'invalid_grant' } },
    })
  })

  it('refuses a wrong or missing verifier, and another redirect URI', async () => {
    const { challenge } = pkce()
    const params = { access_type: 'offline', code_challenge: challenge, code_challenge_method: 'S256' }
    const wrong = await authorize(params)
    await expect(client().getToken({ code: wrong.searchParams.get('code')!, codeVerifier: pkce().verifier })).rejects.toMatchObject({
      response: { data: { error: 'invalid_grant', error_description: 'Invalid code verifier.' } },
    })
    const missing = await authorize(params)
    await expect(client().getToken({ code: missing.searchParams.get('code')! })).rejects.toMatchObject({
      response: { data: { error: 'invalid_grant', error_description: 'Missing code verifier.' } },
    })
    const elsewhere = await authorize(params)
    await expect(client().getToken({ code: elsewhere.searchParams.get('code')!, redirect_uri: 'http://evil.test/cb' })).rejects.toMatchObject({
      response: { data: { error: 'redirect_uri_mismatch' } },
    })
  })

  it('issues a refresh token only offline, and to a returning account only with prompt=consent', async () => {
    const account = `returning-${randomBytes(3).toString('hex')}`
    const online = await authorize({}, { account: `${account}-online` })
    expect((await client().getToken({ code: online.searchParams.get('code')! })).tokens.refresh_token).toBeUndefined()
    const first = await authorize({ access_type: 'offline' }, { account })
    expect((await client().getToken({ code: first.searchParams.get('code')! })).tokens.refresh_token).toBeDefined()
    const again = await authorize({ access_type: 'offline' }, { account })
    expect((await client().getToken({ code: again.searchParams.get('code')! })).tokens.refresh_token).toBeUndefined()
    const forced = await authorize({ access_type: 'offline', prompt: 'consent' }, { account })
    const { tokens } = await client().getToken({ code: forced.searchParams.get('code')! })
    expect(tokens.refresh_token).toBeDefined()
    await client().revokeToken(tokens.refresh_token!)
    const c = client()
    c.setCredentials({ refresh_token: tokens.refresh_token! })
    await expect(c.refreshAccessToken()).rejects.toMatchObject({ response: { data: { error: 'invalid_grant' } } })
  })
})

describe('openid', () => {
  it("answers the code exchange with an id_token naming the account by sub, signed with a key from its certs, as Google's does", async () => {
    const { verifier, challenge } = pkce()
    const account = `openid-${randomBytes(4).toString('hex')}`
    const params = { access_type: 'offline', code_challenge: challenge, code_challenge_method: 'S256', scope: ['openid', ...SCOPES].join(' ') }
    const page = await (
      await fetch(`${fake.authorizeUrl}?${new URLSearchParams({ client_id: fake.clientId, redirect_uri: REDIRECT, response_type: 'code', ...params })}`)
    ).text()
    // Signing in is not a box to untick.
    expect(page).not.toContain('value="openid"')
    const back = await authorize(params, { account, scopes: SCOPES })
    const { tokens } = await client().getToken({ code: back.searchParams.get('code')!, codeVerifier: verifier })
    expect(tokens.scope!.split(' ')).toContain('openid')
    const [header, payload, signature] = tokens.id_token!.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>
    expect(claims).toMatchObject({ iss: 'https://accounts.google.com', aud: fake.clientId, azp: fake.clientId, sub: expect.stringMatching(/^1\d{20}$/) })
    expect((claims['exp'] as number) - (claims['iat'] as number)).toBe(3600)
    const { kid, alg } = JSON.parse(Buffer.from(header, 'base64url').toString()) as { kid: string; alg: string }
    expect(alg).toBe('RS256')
    const certs = (await (await fetch(`${fake.url}/oauth2/v3/certs`)).json()) as { keys: (JsonWebKey & { kid: string })[] }
    const jwk = certs.keys.find((k) => k.kid === kid)!
    expect(
      createVerify('RSA-SHA256')
        .update(`${header}.${payload}`)
        .verify(createPublicKey({ key: jwk, format: 'jwk' }), signature, 'base64url'),
    ).toBe(true)
    // The same account consenting again is the same sub; another account is another.
    const subOf = async (who: string | undefined) => {
      const p = pkce()
      const code = (
        await authorize({ ...params, prompt: 'consent', code_challenge: p.challenge }, { ...(who === undefined ? {} : { account: who }), scopes: SCOPES })
      ).searchParams.get('code')!
      const idToken = (await client().getToken({ code, codeVerifier: p.verifier })).tokens.id_token!
      return (JSON.parse(Buffer.from(idToken.split('.')[1]!, 'base64url').toString()) as { sub: string }).sub
    }
    expect(await subOf(account)).toBe(claims['sub'])
    expect(await subOf(undefined)).not.toBe(claims['sub'])
  })

  it('gives no id_token when openid is not asked for', async () => {
    const { verifier, challenge } = pkce()
    const back = await authorize({ access_type: 'offline', code_challenge: challenge, code_challenge_method: 'S256' })
    const { tokens } = await client().getToken({ code: back.searchParams.get('code')!, codeVerifier: verifier })
    expect(tokens.id_token).toBeUndefined()
  })
})
