import { existsSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import type { DeadLetter } from '@fitstream/shared'
import { testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { ADMIN, SCREENSHOTS, CHROMIUM, useBrowserWorld } from './support.js'

/**
 * Bull Board as an operator sees it, in Debian's Chromium: behind the admin password, every stage
 * and its dead letters, raw fitness data hidden. The README's Bull Board screenshots are taken here.
 */
const prefix = uniquePrefix('bull-board')
const { cleanup } = testRedis(prefix)

const window = { startMs: Date.UTC(2026, 10, 23, 10), endMs: Date.UTC(2026, 10, 23, 11) }
const samples = [{ type: 'heart_rate', startMs: window.startMs, endMs: window.endMs, values: { avg: 71.3, max: 93.7, min: 58.1 }, unit: 'bpm', revision: 0 }]

describe.runIf(existsSync(CHROMIUM) || process.env.FITSTREAM_REQUIRE_BROWSER === '1')('Bull Board in a real browser', () => {
  const world = useBrowserWorld(prefix, cleanup, {
    // Some of everything an operator meets: waiting work, backfill chunks, raw data, dead letters.
    prepare: async ({ service }) => {
      const q = service.queues
      for (let i = 0; i < 3; i++) {
        await q.add(
          'fetch',
          {
            syncId: `s${i}`,
            userId: `user-board-000${i}`,
            dataTypes: ['steps', 'heart_rate'],
            window,
            bucketMs: 3_600_000,
            kind: 'backfill',
            chunk: { index: i + 1, of: 3 },
          },
          { name: `backfill ${i + 1}/3`, priority: 10 },
        )
      }
      await q.add('anonymize', { syncId: 's9', userId: 'user-board-0009', window, samples: samples as never })
      const letter = (stage: 'fetch' | 'anonymize', payload: unknown, code: string, message: string): DeadLetter => ({
        stage,
        jobId: `${stage}-1`,
        jobName: stage,
        payload,
        error: { code, name: 'UpstreamError', message },
        permanent: true,
        attemptsMade: 1,
        maxAttempts: 6,
        createdAt: new Date(Date.now() - 120_000).toISOString(),
        firstAttemptAt: new Date(Date.now() - 100_000).toISOString(),
        failedAt: new Date().toISOString(),
      })
      await q.addDeadLetter(
        'fetch',
        letter(
          'fetch',
          { syncId: 's1', userId: 'user-board-0001', dataTypes: ['heart_rate'], window, bucketMs: 3_600_000 },
          'FST_ERR_GOOGLE_REJECTED',
          'Google Fitness API answered 403 forbidden: No permission to read data for this private data source',
        ),
        'fetch-dl-1',
      )
      await q.addDeadLetter(
        'anonymize',
        letter('anonymize', { syncId: 's2', userId: 'user-board-0002', window, samples }, 'FST_ERR_INVALID_PAYLOAD', 'invalid anonymize job payload'),
        'anonymize-dl-1',
      )
    },
  })
  const boardUrl = (): string => `${world.publicUrl}/admin/queues`

  it('refuses a browser without the admin password', async () => {
    const context = await world.browser.newContext()
    const response = await context.request.get(boardUrl())
    expect(response.status()).toBe(401)
    expect(response.headers()['www-authenticate']).toMatch(/^Basic /)
    // A page load without credentials is stopped at the browser's password challenge.
    await expect((await context.newPage()).goto(boardUrl())).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/)
    await context.close()
  })

  it('shows every stage and its dead letters, and hides raw samples', async () => {
    const context = await world.browser.newContext({ httpCredentials: { username: 'operator', password: ADMIN }, viewport: { width: 1280, height: 800 } })
    const page = await context.newPage()
    await page.goto(boardUrl())
    await page.getByText('3. anonymize · dead letters').first().waitFor()
    const overview = await page.textContent('body')
    for (const name of ['1. sync', '2. fetch', '2. fetch · dead letters', '3. anonymize', '4. publish · dead letters']) expect(overview).toContain(name)
    await page.screenshot({ path: `${SCREENSHOTS}bull-board-overview.png`, fullPage: true })

    await page.goto(`${boardUrl()}/queue/${encodeURIComponent('fetch')}?status=prioritized`)
    await page.getByText('backfill 1/3').first().waitFor()
    await page.screenshot({ path: `${SCREENSHOTS}bull-board-backfill.png` })

    for (const queue of ['anonymize-dlq', 'anonymize']) {
      await page.goto(`${boardUrl()}/queue/${encodeURIComponent(queue)}?status=waiting`)
      await page.getByText('raw samples hidden').first().waitFor()
      const text = (await page.textContent('body')) ?? ''
      expect(text).not.toContain('93.7')
      if (queue === 'anonymize-dlq') await page.screenshot({ path: `${SCREENSHOTS}bull-board-dead-letter.png` })
    }
    await context.close()
  })

  it("cannot be framed by another site's page (clickjacking its destructive buttons)", async () => {
    // The attacker's page, on another origin, frames the board for an operator whose browser has the password.
    const attacker: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html')
      res.end(`<!doctype html><p>win a prize</p><iframe id="board" src="${boardUrl()}" width="1000" height="600"></iframe>`)
    })
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve))
    try {
      const context = await world.browser.newContext({ httpCredentials: { username: 'operator', password: ADMIN } })
      const page = await context.newPage()
      const framed = page.waitForResponse((r) => r.url() === boardUrl() && r.status() !== 401)
      await page.goto(`http://127.0.0.1:${(attacker.address() as AddressInfo).port}/`)
      const answer = await framed
      expect(answer.status()).toBe(200)
      expect(answer.headers()['content-security-policy']).toContain("frame-ancestors 'none'")
      expect(answer.headers()['x-frame-options']).toBe('DENY')
      await page.waitForTimeout(1_000)
      // The browser refused to render it: no frame shows the board.
      for (const frame of page.frames()) expect((await frame.textContent('body', { timeout: 2_000 }).catch(() => '')) ?? '').not.toContain('1. sync')
      await context.close()
    } finally {
      await new Promise((resolve) => attacker.close(resolve))
    }
  })
})
