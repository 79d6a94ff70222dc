import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { APPLE_MORNING, writeZip } from '../../../packages/exports/test/fixtures.js'
import { CHROMIUM, SCREENSHOTS, uploadExport, useBrowserWorld } from './support.js'

/** The account page's upload section in Debian's Chromium: upload, the two progress bars, the summary, a refusal. */
const prefix = uniquePrefix('imports-browser')
const { cleanup } = testRedis(prefix)

describe.runIf(existsSync(CHROMIUM) || process.env.FITSTREAM_REQUIRE_BROWSER === '1')('uploading an export on the account page', () => {
  const world = useBrowserWorld(prefix, cleanup)

  it('uploads an Apple Health export, shows both bars full and what was found per type and period', async () => {
    const page = await (await world.browser.newContext({ viewport: { width: 900, height: 1200 } })).newPage()
    const blocked: string[] = []
    page.on('console', (message) => message.type() === 'error' && blocked.push(message.text()))
    await page.goto(`${world.publicUrl}/`)
    await page.getByRole('checkbox', { name: /^Activity/ }).check()
    await page.getByRole('checkbox', { name: /^Heart rate/ }).check()
    await page.getByRole('button', { name: /^Connect/ }).click()
    await page.waitForURL(`${world.google.authorizeUrl}**`)
    await page.getByRole('button', { name: 'Allow' }).click()
    await page.waitForURL(`${world.publicUrl}/account**`)

    await uploadExport(page, writeZip([{ name: 'apple_health_export/export.xml', data: APPLE_MORNING }]))
    await page.getByText(/Imported 12 records from your Apple Health export/).waitFor()
    expect(await page.locator('#upload-bar').evaluate((bar) => (bar as unknown as { value: number }).value)).toBe(1)
    expect(await page.locator('#import-bar').evaluate((bar) => (bar as unknown as { value: number }).value)).toBe(1)
    const rows = await page.locator('#import-summary tr').allInnerTexts()
    expect(rows).toContainEqual(expect.stringMatching(/^steps\s+2026-11-30 – 2026-11-30\s+2\s+2\s+2$/))
    expect(rows).toContainEqual(expect.stringMatching(/^heart rate\s+2026-11-30 – 2026-11-30\s+2\s+1\s+1$/))
    expect(rows).toContainEqual(expect.stringMatching(/^sleep\s+.*not sold \(you do not sell this kind\)$/))
    await page.screenshot({ path: `${SCREENSHOTS}account-import.png`, fullPage: true })

    await uploadExport(page, Buffer.from('not a zip'))
    await page.getByText(/Not imported: the upload is not a zip archive.*\(FST_ERR_IMPORT_NOT_ZIP\)\. Nothing of this file was sold\./).waitFor()
    expect(blocked.filter((text) => /Content Security Policy/i.test(text))).toEqual([])
  })
})
