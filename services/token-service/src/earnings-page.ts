import { escapeHtml } from './html.js'
import type { EarningsReport } from './earnings.js'

const WIDTH = 480
const HEIGHT = 160
const PAD = 28

/** The operator's and Streamr's cut as people read it: "10 %". */
function percent(fraction: string): string {
  const value = Math.round(Number(fraction) * 10_000) / 100
  return `${value} %`
}

/** Total earnings over time as an inline SVG line (no script, no external resource: the page's CSP allows neither). */
export function earningsChart(history: EarningsReport['history'], token: string): string {
  const points = history.length === 1 ? [history[0]!, history[0]!] : history
  if (points.length === 0) return ''
  const values = points.map((p) => Number(p.total))
  const max = Math.max(...values, 0) || 1
  const x = (i: number) => PAD + (i * (WIDTH - 2 * PAD)) / (points.length - 1)
  const y = (v: number) => HEIGHT - PAD - (v / max) * (HEIGHT - 2 * PAD)
  const line = points.map((p, i) => `${x(i).toFixed(1)},${y(Number(p.total)).toFixed(1)}`).join(' ')
  const first = escapeHtml(points[0]!.day)
  const last = escapeHtml(points[points.length - 1]!.day)
  return `<svg role="img" aria-labelledby="earnings-chart-title" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="100%" style="max-width:${WIDTH}px">
<title id="earnings-chart-title">Your total earnings from ${first} to ${last}: ${escapeHtml(String(values[values.length - 1]))} ${escapeHtml(token)}</title>
<line x1="${PAD}" y1="${HEIGHT - PAD}" x2="${WIDTH - PAD}" y2="${HEIGHT - PAD}" stroke="#888"/>
<line x1="${PAD}" y1="${PAD}" x2="${PAD}" y2="${HEIGHT - PAD}" stroke="#888"/>
<polyline fill="none" stroke="#2a7" stroke-width="2" points="${line}"/>
<text x="${PAD}" y="${HEIGHT - 8}" font-size="11">${first}</text>
<text x="${WIDTH - PAD}" y="${HEIGHT - 8}" font-size="11" text-anchor="end">${last}</text>
<text x="${PAD + 4}" y="${PAD - 8}" font-size="11">${escapeHtml(String(max))} ${escapeHtml(token)}</text>
</svg>`
}

/** The account page's earnings section: what can be withdrawn, what was earned in all, the fees, the chart, and a withdrawal form. */
export function earningsSection(report: EarningsReport, csrfToken: string): string {
  const token = escapeHtml(report.token)
  return `<section id="earnings">
<h2>Your earnings</h2>
<p>Each time the product your data is part of is sold, the money is shared equally among everyone whose data is in it,
after FitStream's fee of ${escapeHtml(percent(report.adminFee))} and Streamr's fee of ${escapeHtml(percent(report.protocolFee))}.</p>
<p><strong>${escapeHtml(report.withdrawable)} ${token}</strong> ready to withdraw; ${escapeHtml(report.total)} ${token} earned in all.</p>
${earningsChart(report.history, report.token)}
<form method="post" action="/account/earnings/withdraw">
<input type="hidden" name="csrf" value="${escapeHtml(csrfToken)}">
<label>Pay everything ready to withdraw to this address (a wallet or exchange address; FitStream pays the fee):
<input name="to" required pattern="0x[0-9a-fA-F]{40}" size="44" autocomplete="off"></label>
<button type="submit">Withdraw</button>
</form>
<p>Deleting your account? Your earnings are not lost: have them paid first, in the same step.</p>
<form method="post" action="/account/delete">
<input type="hidden" name="csrf" value="${escapeHtml(csrfToken)}">
<label>Pay my earnings to:
<input name="payTo" required pattern="0x[0-9a-fA-F]{40}" size="44" autocomplete="off"></label>
<button class="danger" type="submit">Delete my data and pay my earnings</button>
</form>
</section>`
}

/** The account page with the earnings section before its end (nothing is added when earnings are unavailable). */
export function withEarningsSection(page: string, report: EarningsReport | undefined, csrfToken: string): string {
  if (report === undefined) return page
  const at = page.lastIndexOf('</body>')
  return at < 0 ? page : `${page.slice(0, at)}${earningsSection(report, csrfToken)}${page.slice(at)}`
}
