import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { APPLE_MORNING, writeZip } from '../../../packages/exports/test/fixtures.js'
import { CHROMIUM, SCREENSHOTS, uploadExport, useBrowserWorld } from './support.js'

/**
 * A person without Google in Debian's Chromium, with a virtual platform authenticator (DevTools'
 * WebAuthn domain): makes an account with a passkey, uploads an export, signs out, signs back in
 * with the same passkey and reads their privacy report.
 */
const prefix = uniquePrefix('passkeys-browser')
const { cleanup } = testRedis(prefix)

describe.runIf(existsSync(CHROMIUM) || process.env.FITSTREAM_REQUIRE_BROWSER === '1')('a passkey account in the browser', () => {
  // WebAuthn takes no IP address as a relying party ID: the service is reached as localhost.
  const world = useBrowserWorld(prefix, cleanup, { host: 'localhost' })

  it('signs up with a passkey, uploads an export, signs out, signs in with the passkey and sees the report', async () => {
    const context = await world.browser.newContext({ viewport: { width: 900, height: 1200 } })
    const page = await context.newPage()
    const blocked: string[] = []
    page.on('console', (message) => message.type() === 'error' && blocked.push(message.text()))
    const devtools = await context.newCDPSession(page)
    await devtools.send('WebAuthn.enable')
    const { authenticatorId } = await devtools.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    })

    await page.goto(`${world.publicUrl}/`)
    await page.getByRole('link', { name: /make an account with a passkey/ }).click()
    await page.waitForURL(`${world.publicUrl}/passkey`)
    await page.getByRole('checkbox', { name: /^Activity/ }).check()
    await page.getByRole('checkbox', { name: /^Heart rate/ }).check()
    await page.getByRole('button', { name: 'Make an account with a passkey' }).click()
    await page.waitForURL(`${world.publicUrl}/account?notice=passkey`)
    await page.getByText('Signed in with your passkey').waitFor()
    const { credentials } = await devtools.send('WebAuthn.getCredentials', { authenticatorId })
    expect(credentials).toHaveLength(1)
    expect(credentials[0]).toMatchObject({ isResidentCredential: true, rpId: 'localhost' })

    await uploadExport(page, writeZip([{ name: 'apple_health_export/export.xml', data: APPLE_MORNING }]))
    await page.getByText(/Imported 12 records from your Apple Health export/).waitFor()
    expect(await page.locator('#import-bar').evaluate((bar) => (bar as unknown as { value: number }).value)).toBe(1)
    const rows = await page.locator('#import-summary tr').allInnerTexts()
    // No Google reads to leave recent hours to: both steps hours are passed on.
    expect(rows).toContainEqual(expect.stringMatching(/^steps\s+2026-11-30 – 2026-11-30\s+2\s+2\s+2$/))
    expect(rows).toContainEqual(expect.stringMatching(/^sleep\s+.*not sold \(you do not sell this kind\)$/))
    await page.screenshot({ path: `${SCREENSHOTS}passkey-account.png`, fullPage: true })

    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.waitForURL(`${world.publicUrl}/passkey`)
    expect((await page.request.get(`${world.publicUrl}/account`)).status()).toBe(401)

    await page.getByRole('button', { name: 'Sign in with a passkey' }).click()
    await page.waitForURL(`${world.publicUrl}/account`)
    await page.getByText('Signed in with your passkey').waitFor()
    const after = await devtools.send('WebAuthn.getCredentials', { authenticatorId })
    expect(after.credentials[0]!.signCount).toBeGreaterThan(credentials[0]!.signCount)

    await page.getByRole('link', { name: /What has been released about you/ }).click()
    await page.waitForURL(/\/users\/[A-Za-z0-9_-]+\/privacy$/)
    const userId = new URL(page.url()).pathname.split('/')[2]
    // Their own report (no anonymiser runs here, so nothing is released yet).
    const report = JSON.parse((await page.locator('body').innerText()).trim()) as unknown
    expect(report).toMatchObject({ userId, totals: { recordsReleased: 0 }, releases: [] })
    expect(blocked.filter((text) => /Content Security Policy/i.test(text))).toEqual([])
  })
})
