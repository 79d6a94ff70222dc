import { describe, expect, it } from 'vitest'
import { earningsChart, earningsSection, withEarningsSection } from '../src/earnings-page.js'
import type { EarningsReport } from '../src/earnings.js'

const report: EarningsReport = {
  address: '0x0000000000000000000000000000000000000001',
  isMember: true,
  withdrawable: '0.5',
  total: '2.136',
  withdrawn: '1.636',
  token: 'DATA',
  adminFee: '0.1',
  protocolFee: '0.01',
  history: [
    { day: '2026-11-01', total: '0.0' },
    { day: '2026-11-02', total: '1.068' },
    { day: '2026-11-05', total: '2.136' },
  ],
}

describe('the account page’s earnings', () => {
  it('states what can be withdrawn, what was earned, and both fees', () => {
    const html = earningsSection(report, 'csrf-token')
    expect(html).toContain('<strong>0.5 DATA</strong> ready to withdraw; 2.136 DATA earned in all.')
    expect(html).toContain("FitStream's fee of 10 % and Streamr's fee of 1 %")
    expect(html).toContain('action="/account/earnings/withdraw"')
    expect(html).toContain('name="payTo"')
    expect(html).toContain('value="csrf-token"')
  })

  it('draws total earnings over time as a line, rising with the history', () => {
    const svg = earningsChart(report.history, 'DATA')
    const points = /points="([^"]+)"/
      .exec(svg)![1]!
      .split(' ')
      .map((p) => p.split(',').map(Number) as [number, number])
    expect(points).toHaveLength(3)
    // x grows with time; y shrinks as the total grows (SVG's y points down).
    expect(points[0]![0]).toBeLessThan(points[2]![0])
    expect(points[0]![1]).toBeGreaterThan(points[1]![1])
    expect(points[1]![1]).toBeGreaterThan(points[2]![1])
    expect(svg).toContain('Your total earnings from 2026-11-01 to 2026-11-05: 2.136 DATA')
    // One day of history still draws (a flat line); none draws nothing.
    expect(earningsChart([{ day: '2026-11-01', total: '1' }], 'DATA')).toContain('<polyline')
    expect(earningsChart([], 'DATA')).toBe('')
  })

  it('escapes what it shows, and leaves the page alone without earnings', () => {
    const hostile = earningsSection({ ...report, token: '<script>x</script>' }, '"><b>')
    expect(hostile).not.toContain('<script>')
    expect(hostile).not.toContain('"><b>')
    const page = '<html><body><h1>Account</h1></body></html>'
    expect(withEarningsSection(page, undefined, 'c')).toBe(page)
    expect(withEarningsSection(page, report, 'c')).toMatch(/<h1>Account<\/h1><section id="earnings">[\s\S]*<\/section><\/body>/)
  })
})
