import { createHash } from 'node:crypto'
import { dataType, type DataTypeKey, type GoogleDataApi } from '@fitstream/shared'
import { COHORT_WORDS } from './consent.js'
import { escapeHtml, groupChoices, layout, sellingChoices, soldIndividually } from './html.js'
import type { User } from './users.js'

/**
 * The passkey pages' one script, allowed by its hash: it turns the server's options into a WebAuthn
 * call with the browser's own JSON helpers (no library from elsewhere) and posts the result back.
 */
export const PASSKEY_SCRIPT = `(function(){
var say=document.getElementById('passkey-status');
function tell(text){if(say)say.textContent=text}
function supported(){return window.PublicKeyCredential&&PublicKeyCredential.parseCreationOptionsFromJSON&&PublicKeyCredential.parseRequestOptionsFromJSON}
function post(url,body){return fetch(url,{method:'POST',credentials:'same-origin',headers:{'content-type':'application/json'},body:JSON.stringify(body)}).then(function(r){return r.json().then(function(j){j.status=r.status;return j})})}
function refusal(j){return (j.message||'it did not work')+(j.code?' ('+j.code+')':'')}
function finish(j){if(j.location){location.assign(j.location)}else{tell('Not signed in: '+refusal(j)+'. Please try again.')}}
function failed(e){tell('Your browser did not make or use a passkey'+(e&&e.name?' ('+e.name+')':'')+'. Nothing was stored.')}
var signup=document.getElementById('passkey-signup');
if(signup)signup.addEventListener('submit',function(e){e.preventDefault();if(!supported()){tell('This browser cannot use passkeys.');return}
 var f=new FormData(signup);var body={csrf:f.get('csrf'),groups:f.getAll('groups'),individual:f.getAll('individual'),tz:Intl.DateTimeFormat().resolvedOptions().timeZone||''};
 tell('Asking your device for a passkey…');
 post('/passkey/register/options',body).then(function(o){if(o.status!==200){tell('Not created: '+refusal(o)+'.');return}
  return navigator.credentials.create({publicKey:PublicKeyCredential.parseCreationOptionsFromJSON(o)}).then(function(c){return post('/passkey/register',c.toJSON()).then(finish)},failed)})});
var signin=document.getElementById('passkey-signin');
if(signin)signin.addEventListener('submit',function(e){e.preventDefault();if(!supported()){tell('This browser cannot use passkeys.');return}
 tell('Asking your device for your passkey…');
 post('/passkey/sign-in/options',{csrf:new FormData(signin).get('csrf')}).then(function(o){if(o.status!==200){tell('Not signed in: '+refusal(o)+'.');return}
  return navigator.credentials.get({publicKey:PublicKeyCredential.parseRequestOptionsFromJSON(o)}).then(function(c){return post('/passkey/sign-in',c.toJSON()).then(finish)},failed)})});
})()`

/** The script's CSP source (`'sha256-...'`). */
export const PASSKEY_SCRIPT_SOURCE = `'sha256-${createHash('sha256').update(PASSKEY_SCRIPT).digest('base64')}'`

const SCRIPT_TAG = `<script>${PASSKEY_SCRIPT}</script>`

/** Sign up with a passkey (choosing what to sell), or sign in with one. */
export function passkeyPage(formToken: string, api: GoogleDataApi): string {
  const csrf = `<input type="hidden" name="csrf" value="${escapeHtml(formToken)}">`
  return layout(
    'FitStream without Google',
    `<h1>Sell your fitness data without Google</h1>
<p>Make a FitStream account with a passkey (your phone's or computer's screen lock, or a security key), upload the
exports you already have (Apple Health, Google Takeout), and come back with the same passkey to change what you sell,
see what was released about you and what you have earned. FitStream never learns your name or email.</p>
<h2>Sign in</h2>
<form id="passkey-signin">${csrf}<p><button type="submit">Sign in with a passkey</button></p></form>
<h2>Make an account</h2>
<form id="passkey-signup">
<fieldset><legend>What may FitStream sell from your uploads?</legend>
<p class="muted">${escapeHtml(COHORT_WORDS)}</p>
${groupChoices(new Set(), new Set(), api)}
</fieldset>
${csrf}
<p><button type="submit">Make an account with a passkey</button></p>
</form>
<p id="passkey-status" role="status" class="muted"></p>
<p><a href="/">Connect Google instead</a></p>
${SCRIPT_TAG}`,
  )
}

/** The start page with a way in for people without Google, before its end. */
export function withPasskeyLinks(page: string): string {
  const at = page.lastIndexOf('</body>')
  const links = `<section id="passkey-links"><h2>No Google account, or rather not?</h2>
<p>Upload your Apple Health or Google Takeout export instead: <a href="/passkey">make an account with a passkey, or sign in with yours</a>.</p></section>`
  return at < 0 ? page : `${page.slice(0, at)}${links}${page.slice(at)}`
}

/** The account page of someone with no Google link: what they sell from their uploads, the privacy report, deletion, signing out. */
export function passkeyAccountPage(input: { user: User; csrfToken: string; api: GoogleDataApi; notice?: string }): string {
  const { user, csrfToken, api, notice } = input
  const individual = soldIndividually(user)
  const csrf = `<input type="hidden" name="csrf" value="${escapeHtml(csrfToken)}">`
  const id = escapeHtml(user.id)
  return layout(
    'Your FitStream account',
    `<h1>Your FitStream account</h1>
${notice === undefined ? '' : `<p class="notice">${escapeHtml(notice)}</p>`}
<p class="notice"><strong>Signed in with your passkey.</strong> FitStream sells what you upload below, as averages over many people${
      individual.length > 0 ? ', and as your own pseudonymised hourly records for the kinds you opted in to' : ''
    }. It reads nothing from Google.</p>
<dl>
<dt>Selling</dt><dd>${escapeHtml(describeTypes(user.dataTypes))}, as averages over many people</dd>
<dt>Your own records</dt><dd>${individual.length > 0 ? `${escapeHtml(describeTypes(individual))}, pseudonymised hourly records` : 'none: only averages over many people'}</dd>
<dt>Privacy report</dt><dd><a id="privacy-report" href="/users/${id}/privacy">What has been released about you, and the privacy budget it cost</a></dd>
</dl>
<form method="post" action="/sign-out">${csrf}<p><button type="submit">Sign out</button></p></form>
<h2>Change what you sell</h2>
<form method="post" action="/account/consent">
${sellingChoices(user, api)}
${csrf}
<p class="muted">Your choices apply to what is imported from now on.</p>
<p><button type="submit">Save my choices</button></p>
</form>
<h2>Delete my data</h2>
<form method="post" action="/account/delete">
${csrf}
<p>This deletes your account, your passkeys, your settings and everything waiting to be processed.
Pseudonymised records and noisy averages over many people already published cannot be recalled.</p>
<p><button class="danger" type="submit">Delete my data</button></p>
</form>`,
  )
}

/** A Google-connected account page with the privacy report and signing out, before its end. */
export function withAccountLinks(page: string, userId: string, csrfToken: string): string {
  const at = page.lastIndexOf('</body>')
  const links = `<section id="account-links"><p><a id="privacy-report" href="/users/${escapeHtml(userId)}/privacy">Your privacy report</a>: what has been released about you, and the privacy budget it cost.</p>
<form method="post" action="/sign-out"><input type="hidden" name="csrf" value="${escapeHtml(csrfToken)}"><p><button type="submit">Sign out</button></p></form></section>`
  return at < 0 ? page : `${page.slice(0, at)}${links}${page.slice(at)}`
}

function describeTypes(types: readonly DataTypeKey[]): string {
  return types.length === 0 ? 'nothing' : types.map((t) => dataType(t).description.split(':')[0]!.toLowerCase()).join(', ')
}
