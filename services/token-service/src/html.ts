import { dataApiOfScopes, dataType, type DataTypeKey, type GoogleDataApi } from '@fitstream/shared'
import { COHORT_WORDS, INDIVIDUAL_OFFERS, INDIVIDUAL_WORDS, consentGroups, groupsOf, individualOffers, mustMoveToHealth } from './consent.js'
import { describeEarningsOnErasure } from './earnings-membership.js'
import type { ErasureReceipt } from './erasure.js'
import type { User } from './users.js'

/** The token service's few pages: plain HTML, no scripts from elsewhere, every value escaped. */

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** The one inline script: tells the service the browser's time zone, so daily totals follow the person's days. */
export const TIME_ZONE_SCRIPT = "document.querySelector('input[name=tz]').value = Intl.DateTimeFormat().resolvedOptions().timeZone || ''"

export function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} - FitStream</title>
<style>
body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1d2327;line-height:1.45}
h1{font-size:1.6rem}fieldset{border:1px solid #ccd;border-radius:6px;padding:.5rem 1rem}legend{font-weight:600}
div.group{padding:.35rem 0}div.group>label{display:block}div.group small{display:block;color:#555;margin-left:1.6rem}
label.individual{margin:.3rem 0 0 1.6rem;font-size:.92rem}label.individual strong{color:#8a4b00}
button,.button{font-size:1rem;padding:.5rem 1.2rem;border-radius:5px;border:1px solid #0b5cad;background:#0b66c3;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
button.danger{background:#b3261e;border-color:#8c1d18}.muted{color:#555}.notice{background:#eef5ff;border-left:4px solid #0b66c3;padding:.5rem 1rem}
.warning{background:#fff4e5;border-left:4px solid #e08600;padding:.5rem 1rem}dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}
</style></head><body>${body}</body></html>`
}

/** What people know each API as. */
export const API_NAMES: Readonly<Record<GoogleDataApi, string>> = { fit: 'Google Fit', health: 'Google Health' }

// "pseudonymised, not anonymous" stands out; the rest explains it.
const [INDIVIDUAL_HEAD, INDIVIDUAL_TAIL] = [INDIVIDUAL_WORDS.slice(0, INDIVIDUAL_WORDS.indexOf(':')), INDIVIDUAL_WORDS.slice(INDIVIDUAL_WORDS.indexOf(':') + 1)]

/** One checkbox per group (cohorts), and under it one opt-in per type it also offers as individual records, off unless chosen. */
export function groupChoices(checked: ReadonlySet<string>, individual: ReadonlySet<string>, api: GoogleDataApi): string {
  const box = (name: string, value: string, on: boolean) => `<input type="checkbox" name="${name}" value="${value}"${on ? ' checked' : ''}>`
  return consentGroups(api)
    .map((g) => {
      const optIns = individualOffers(g).map(
        (key) =>
          `<label class="individual">${box('individual', key, individual.has(key))} Also sell my ${escapeHtml(INDIVIDUAL_OFFERS[key]!)} as individual hourly records — <strong>${escapeHtml(INDIVIDUAL_HEAD)}</strong>:${escapeHtml(INDIVIDUAL_TAIL)}</label>`,
      )
      return `<div class="group"><label>${box('groups', g.group, checked.has(g.group))} ${escapeHtml(g.title)}<small>${escapeHtml(g.description)}</small></label>${optIns.join('')}</div>`
    })
    .join('\n')
}

/** The types a person sells as individual records: those they opted in to that they still sell. */
export function soldIndividually(user: Pick<User, 'dataTypes' | 'individualTypes'>): DataTypeKey[] {
  return user.individualTypes.filter((key) => user.dataTypes.includes(key))
}

/** An account page's choice of what to sell, ticked as the person sells now. */
export function sellingChoices(user: Pick<User, 'dataTypes' | 'individualTypes'>, api: GoogleDataApi): string {
  return `<fieldset><legend>Kinds of data</legend>
<p class="muted">${escapeHtml(COHORT_WORDS)}</p>
${groupChoices(groupsOf(user.dataTypes), new Set(soldIndividually(user)), api)}
</fieldset>`
}

/** What buyers get, as PRIVACY.md ("In plain words") puts it. */
const WHAT_BUYERS_GET = `<ul>
<li><strong>Everything you tick is sold as cohorts.</strong> ${escapeHtml(COHORT_WORDS)} An average is published only when several hundred people or more are in it.</li>
<li><strong>Your own hourly records only if you tick them, one kind at a time.</strong> They are ${escapeHtml(INDIVIDUAL_HEAD)}: someone who knows your routine may find your records. Instead of your name they carry a code that changes every month, and your records of every type share one code each month, so your steps and your heart rate can be joined. Each covers one whole hour, with values rounded and capped.</li>
<li>Never sold: your name, email, Google account, devices or apps, and where you were (distance and speed are totals, not places).</li>
<li>Your Google tokens are stored encrypted and are used only to read the kinds of data you tick below.</li>
</ul>`

export function onboardingPage(csrfToken: string, api: GoogleDataApi, problem?: string): string {
  const name = API_NAMES[api]
  return layout(
    'Sell your fitness data',
    `<h1>Sell your ${name} data</h1>
<p>FitStream reads the fitness data you choose from ${name} once an hour and offers it to buyers on the
Streamr Hub, a data marketplace. You can change what you sell or delete everything at any time.
You are paid when it sells: each sale is shared equally among everyone whose data is in it, after FitStream's
and Streamr's fees; your account page shows what you have earned and pays it to an address you choose.</p>
<h2>What buyers get</h2>
${WHAT_BUYERS_GET}
${problem === undefined ? '' : `<p class="warning">${escapeHtml(problem)}</p>`}
<form method="post" action="/connect">
<fieldset><legend>What may FitStream sell?</legend>
${groupChoices(new Set(), new Set(), api)}
</fieldset>
<input type="hidden" name="csrf" value="${escapeHtml(csrfToken)}">
<input type="hidden" name="tz" value="">
<p class="muted">Next, Google asks you to allow read access to exactly these kinds of data.</p>
<p><button type="submit">Connect ${name}</button></p>
</form>
<script>${TIME_ZONE_SCRIPT}</script>`,
  )
}

export interface AccountView {
  readonly user: User
  readonly csrfToken: string
  readonly nextSyncAt: number | undefined
  /** The API new grants are for. */
  readonly api: GoogleDataApi
  readonly notice?: string
}

export function accountPage({ user, csrfToken, nextSyncAt, api, notice }: AccountView): string {
  const reauth = user.state === 'reauth_required'
  // Only what they still sell: an opt-in outlives a later narrowing of consent.
  const individual = soldIndividually(user)
  const sellsIndividually = individual.length > 0
  const closed = user.state === 'move_required'
  const own = dataApiOfScopes(user.scopes, api)
  const [name, ownName] = [API_NAMES[api], API_NAMES[own]]
  // A grant for Google Fit ends with Fit itself, at the end of 2026: saving the choices moves it over.
  const move =
    reauth || closed || !mustMoveToHealth(user, api)
      ? ''
      : `<p class="warning"><strong>Move to ${name}.</strong> Your data is still read through ${ownName}, which Google is shutting down. Save your choices below and Google asks you to allow ${name} instead; nothing is lost.</p>`
  const status = reauth
    ? `<p class="warning"><strong>Google access has ended.</strong> Google no longer accepts FitStream's access (it was revoked or expired), so syncing is paused. Nothing is lost: reconnect and FitStream continues where it stopped.<br><br><a class="button" href="/account/reconnect">Reconnect ${name}</a></p>`
    : closed
      ? `<p class="warning"><strong>${ownName} has closed.</strong> Google no longer hands out your data through it, so syncing is paused. ${
          api === own
            ? 'FitStream is moving to its successor; you will be asked to allow it. Nothing is lost.'
            : `Nothing is lost: save your choices below, allow ${name}, and FitStream catches up from where it stopped.`
        }</p>`
      : `<p class="notice"><strong>Connected.</strong> Your data is read from ${ownName} every hour and offered to buyers as averages over many people${
          sellsIndividually ? ', and as your own pseudonymised hourly records for the kinds you opted in to' : ''
        }.</p>`
  const paused = reauth ? 'paused: reconnect needed' : closed ? `paused: move to ${name} needed` : undefined
  const when = (ms: number | undefined) =>
    ms === undefined || Number.isNaN(ms) ? 'not yet' : new Date(ms).toISOString().replace('T', ' ').slice(0, 16) + ' UTC'
  return layout(
    'Your FitStream account',
    `<h1>Your FitStream account</h1>
${notice === undefined ? '' : `<p class="notice">${escapeHtml(notice)}</p>`}
${status}
${move}
<dl>
<dt>Status</dt><dd>${paused ?? 'active'}</dd>
<dt>Selling</dt><dd>${escapeHtml(describeTypes(user.dataTypes))}, as averages over many people</dd>
<dt>Your own records</dt><dd>${sellsIndividually ? `${escapeHtml(describeTypes(individual))}, pseudonymised hourly records` : 'none: only averages over many people'}</dd>
<dt>Data read up to</dt><dd>${when(user.fetchedUntil)}</dd>
<dt>Last sync</dt><dd>${when(user.lastSyncAt)}</dd>
<dt>Next sync</dt><dd>${paused === undefined ? when(nextSyncAt) : 'paused'}</dd>
</dl>
<h2>Change what you sell</h2>
<form method="post" action="/account/consent">
${sellingChoices(user, api)}
<input type="hidden" name="csrf" value="${escapeHtml(csrfToken)}">
<p class="muted">Less takes effect from the next read. More asks Google for your permission first. Ticking or unticking individual records needs no new permission and applies from the next read.</p>
<p><button type="submit">Save my choices</button></p>
</form>
<h2>Delete my data</h2>
<form method="post" action="/account/delete">
<input type="hidden" name="csrf" value="${escapeHtml(csrfToken)}">
<p>This revokes FitStream's access at Google and deletes your tokens, settings and everything waiting to be processed.
Pseudonymised records and noisy averages over many people already published cannot be recalled.</p>
<p><button class="danger" type="submit">Delete my data</button></p>
</form>`,
  )
}

export function receiptPage(receipt: ErasureReceipt): string {
  const jobs = Object.values(receipt.erased.jobs).reduce((a, b) => a + b, 0)
  const google = {
    revoked: 'FitStream’s access was revoked at Google.',
    already_revoked: 'Google had already ended FitStream’s access.',
    not_revoked: 'Google could not be reached to revoke access; the token is deleted here. You can also remove FitStream at myaccount.google.com/permissions.',
    no_token: 'There was no Google access to revoke.',
  }[receipt.googleAccess]
  return layout(
    'Your data is deleted',
    `<h1>Your data is deleted</h1>
<ul>
<li>${escapeHtml(google)}</li>
<li>Your account, Google tokens, choices and sync position are deleted, and syncing has stopped.</li>
<li>${jobs} pending item(s) of work and ${receipt.erased.privacyState} item(s) of privacy state were deleted.</li>
${receipt.byOwner
  .filter((o) => o.owner === 'anonymizer')
  .map((o) => `<li>${escapeHtml(o.detail)}</li>`)
  .join('')}
<li>${escapeHtml(receipt.notRecalled.explanation)}</li>
<li>${escapeHtml(receipt.note)}</li>
${receipt.earnings === undefined ? '' : `<li>${escapeHtml(describeEarningsOnErasure(receipt.earnings))}</li>`}
</ul>
<p class="muted">Deleted at ${escapeHtml(receipt.erasedAt)}. Reference: ${escapeHtml(receipt.id)}</p>
<p><a href="/">Back to FitStream</a></p>`,
  )
}

export function messagePage(
  title: string,
  message: string,
  link: { href: string; text: string } = { href: '/', text: 'Start again' },
  /** The catalogue code of a refusal, shown so a person can quote it to support. */
  code?: string,
): string {
  return layout(
    title,
    `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>${code === undefined ? '' : `<p class="muted">Error code: ${escapeHtml(code)}</p>`}<p><a class="button" href="${escapeHtml(link.href)}">${escapeHtml(link.text)}</a></p>`,
  )
}

/**
 * What a reconnect link opens: a button, not a redirect, so a mail scanner that fetches the link
 * does not use it up; the link's fields go back in the form's body (never into a logged URL).
 */
export function reconnectPage(link: Readonly<Record<string, string>>, formToken: string, api: GoogleDataApi): string {
  const fields = Object.entries(link)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n')
  return layout(
    'Reconnect your account',
    `<h1>Reconnect ${API_NAMES[api]}</h1>
<p>This link lets you allow FitStream to read your data again. Google will ask you to sign in: use the
same Google account you first connected with. Any other account is refused, and the link works once.</p>
<form method="post" action="/reconnect">
${fields}
<input type="hidden" name="csrf" value="${escapeHtml(formToken)}">
<p><button type="submit">Continue to Google</button></p>
</form>`,
  )
}

function describeTypes(types: readonly DataTypeKey[]): string {
  return types.length === 0 ? 'nothing' : types.map((t) => dataType(t).description.split(':')[0]!.toLowerCase()).join(', ')
}
