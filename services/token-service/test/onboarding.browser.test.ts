import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { type Page } from 'playwright-core'
import { USER_FIELDS, decodeScopes, userKey } from '@fitstream/shared'
import { testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { SCREENSHOTS, useBrowserWorld, CHROMIUM } from './support.js'

/**
 * The onboarding pages in a real browser: Debian's Chromium driven by playwright-core (never a
 * downloaded browser), each run in a fresh temporary profile. Reported as skipped where /usr/bin/chromium is absent,
 * except in CI (.ci/run installs it and sets FITSTREAM_REQUIRE_BROWSER=1), where a missing browser is a failure.
 * The screenshots in docs/screenshots are taken here.
 */
const SCOPE = 'https://www.googleapis.com/auth/fitness.'
const prefix = uniquePrefix('browser')
const { redis, cleanup } = testRedis(prefix)

describe.runIf(existsSync(CHROMIUM) || process.env.FITSTREAM_REQUIRE_BROWSER === '1')('onboarding in a real browser', () => {
  const world = useBrowserWorld(prefix, cleanup)

  async function newPage(): Promise<Page> {
    const context = await world.browser.newContext({ viewport: { width: 900, height: 1000 } })
    return context.newPage()
  }

  async function userOf(page: Page): Promise<string> {
    const cookie = (await page.context().cookies()).find((c) => c.name === 'fitstream_session')!
    const sessionId = decodeURIComponent(cookie.value).split('.')[0]!
    return (await redis.hget(`${prefix}:session:${sessionId}`, 'userId'))!
  }

  it('connects: choose data, consent at Google, land on the account page with exactly that consent', async () => {
    const page = await newPage()
    await page.goto(`${world.publicUrl}/`)
    // Cohorts only unless the person ticks individual records, type by type, told what they are.
    const individual = page.locator('input[name=individual]')
    expect(await individual.count()).toBe(5)
    expect(await page.locator('input[name=individual]:checked').count()).toBe(0)
    const body = await page.locator('body').innerText()
    expect(body).toContain('Averages over many people, with random noise added; never your own records.')
    expect(body).toContain(
      'Also sell my steps as individual hourly records — pseudonymised, not anonymous: someone who knows your routine may find your records. Your records of every type share one code each month.',
    )
    expect(body).not.toMatch(/anonymised|random code/i)
    await page.getByRole('checkbox', { name: /^Activity/ }).check()
    await page.getByRole('checkbox', { name: /^Heart rate/ }).check()
    await page.getByRole('checkbox', { name: /^Also sell my steps/ }).check()
    await page.screenshot({ path: `${SCREENSHOTS}onboarding.png`, fullPage: true })
    await page.getByRole('button', { name: 'Connect Google Fit' }).click()

    await page.waitForURL(`${world.google.authorizeUrl}**`)
    expect(await page.locator('input[name=scope]').evaluateAll((boxes) => boxes.map((b) => b.getAttribute('value')))).toEqual([
      `${SCOPE}activity.read`,
      `${SCOPE}heart_rate.read`,
    ])
    await page.screenshot({ path: `${SCREENSHOTS}google-consent.png`, fullPage: true })
    await page.getByRole('button', { name: 'Allow' }).click()

    await page.waitForURL(`${world.publicUrl}/account**`)
    await expect(page.getByText('Your Google Fit account is connected').isVisible()).resolves.toBe(true)
    await page.screenshot({ path: `${SCREENSHOTS}account.png`, fullPage: true })

    const id = await userOf(page)
    const stored = await redis.hgetall(userKey(prefix, id))
    expect(stored[USER_FIELDS.state]).toBe('active')
    expect(stored[USER_FIELDS.dataTypes]!.split(',').sort()).toEqual(['active_minutes', 'activity', 'calories', 'heart_minutes', 'heart_rate', 'steps'])
    expect(stored[USER_FIELDS.individualTypes]).toBe('steps')
    await expect(page.getByRole('checkbox', { name: /^Also sell my steps/ }).isChecked()).resolves.toBe(true)
    await expect(page.getByRole('checkbox', { name: /^Also sell my heart rate/ }).isChecked()).resolves.toBe(false)
    expect(decodeScopes(stored[USER_FIELDS.scopes]).sort()).toEqual([`${SCOPE}activity.read`, `${SCOPE}heart_rate.read`, 'openid'])
    // The browser's own time zone came along.
    expect(stored[USER_FIELDS.timeZone]).toBeDefined()
    expect(await redis.zscore(`${prefix}:schedule:sync`, id)).not.toBeNull()

    // More data: Google asks again, for the added scope too.
    await page.getByRole('checkbox', { name: /^Sleep/ }).check()
    await page.getByRole('button', { name: 'Save my choices' }).click()
    await page.waitForURL(`${world.google.authorizeUrl}**`)
    await page.getByRole('button', { name: 'Allow' }).click()
    await page.waitForURL(`${world.publicUrl}/account**`)
    expect((await redis.hget(userKey(prefix, id), USER_FIELDS.dataTypes))!.split(',')).toContain('sleep')

    // Deleting from the page: a receipt, and nothing left.
    await page.getByRole('button', { name: 'Delete my data' }).click()
    await page.getByText('Your data is deleted').waitFor()
    const receipt = await page.locator('body').innerText()
    expect(receipt).toContain('Pseudonymised records already published')
    expect(receipt).toContain('noisy averages over many people')
    expect(receipt).not.toMatch(/anonymised/i)
    await page.screenshot({ path: `${SCREENSHOTS}deleted.png`, fullPage: true })
    expect(await redis.exists(userKey(prefix, id))).toBe(0)
    await page.context().close()
  })

  it('shows a clear page when the person denies access at Google', async () => {
    const page = await newPage()
    await page.goto(`${world.publicUrl}/`)
    await page.getByRole('checkbox', { name: /^Body/ }).check()
    await page.getByRole('button', { name: 'Connect Google Fit' }).click()
    await page.waitForURL(`${world.google.authorizeUrl}**`)
    await page.getByRole('button', { name: 'Deny' }).click()
    await page.getByText('You did not allow access').waitFor()
    await expect(page.getByText('Nothing was stored').isVisible()).resolves.toBe(true)
    await page.screenshot({ path: `${SCREENSHOTS}denied.png`, fullPage: true })
    await page.context().close()
  })

  it('rejects a tampered state and a replayed callback with a clear page', async () => {
    const page = await newPage()
    // Google's redirect back is held, as if the browser stopped there, so the callback URL can be altered and replayed.
    let callback: string | undefined
    await page.route(`${world.google.authorizeUrl}**`, async (route) => {
      if (route.request().method() !== 'POST') return route.continue()
      const response = await route.fetch({ maxRedirects: 0 })
      callback = response.headers()['location']
      return route.fulfill({ status: 200, contentType: 'text/html', body: 'held' })
    })
    await page.goto(`${world.publicUrl}/`)
    await page.getByRole('checkbox', { name: /^Activity/ }).check()
    await page.getByRole('button', { name: 'Connect Google Fit' }).click()
    await page.waitForURL(`${world.google.authorizeUrl}**`)
    await page.getByRole('button', { name: 'Allow' }).click()
    await expect.poll(() => callback).toBeDefined()

    const real = new URL(callback!)
    const tampered = new URL(real)
    tampered.searchParams.set('state', `${real.searchParams.get('state')!.slice(0, -3)}abc`)
    expect((await page.goto(tampered.toString()))?.status()).toBe(400)
    await expect(page.getByText('This sign-in is not valid').isVisible()).resolves.toBe(true)
    await page.screenshot({ path: `${SCREENSHOTS}invalid-state.png`, fullPage: true })

    // The genuine callback still works once (the tampered one did not use it up) ...
    expect((await page.goto(real.toString()))?.url()).toMatch(/\/account\?notice=connected$/)
    // ... and never twice.
    expect((await page.goto(real.toString()))?.status()).toBe(400)
    await expect(page.getByText('already used').isVisible()).resolves.toBe(true)
    await page.context().close()
  })
})
