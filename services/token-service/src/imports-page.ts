import { createHash } from 'node:crypto'

/**
 * The account page's upload section: a person sends their Apple Health or Google Takeout export,
 * watches the upload, then the import (bars, not a spinner), then sees what was found per type and
 * period. One constant inline script, allowed by its hash; the user id comes from a data attribute.
 */
export const IMPORT_SCRIPT = `(function(){
var form=document.getElementById('import-form');if(!form)return;
var user=form.getAttribute('data-user'),up=document.getElementById('upload-bar'),im=document.getElementById('import-bar'),
say=document.getElementById('import-status'),out=document.getElementById('import-summary');
function day(ms){return new Date(ms).toISOString().slice(0,10)}
function show(s){
 im.value=s.progress||0;
 if(s.state==='failed'){say.textContent='Not imported: '+s.message+' ('+s.code+'). Nothing of this file was sold.';return true}
 if(s.state==='interrupted'){say.textContent='The import was interrupted. Nothing of it was sold; please upload the file again.';return true}
 if(s.state!=='done'){say.textContent=s.state==='queued'?'Waiting for its turn…':'Reading your export… '+(s.records||0)+' records so far';return false}
 say.textContent='Imported '+s.records+' records from your '+(s.format==='apple-health'?'Apple Health':'Google Takeout')+' export.';
 var rows=['<tr><th>Data</th><th>Period</th><th>Records</th><th>Hours</th><th>Passed on to be sold</th></tr>'];
 Object.keys(s.types||{}).forEach(function(k){var t=s.types[k];
  var why=t.notConsented?'not sold (you do not sell this kind)':t.released+(t.unchanged?' ('+t.unchanged+' already offered)':'')+(t.leftToApi?' ('+t.leftToApi+' come from Google instead)':'');
  rows.push('<tr><td>'+k.replace(/_/g,' ')+'</td><td>'+day(t.firstMs)+' – '+day(t.lastMs)+'</td><td>'+t.records+'</td><td>'+t.buckets+'</td><td>'+why+'</td></tr>')});
 out.innerHTML='<table>'+rows.join('')+'</table>';return true}
function poll(id){fetch('/users/'+user+'/imports/'+id,{credentials:'same-origin'}).then(function(r){return r.json()}).then(function(s){if(!show(s))setTimeout(function(){poll(id)},1000)})}
form.addEventListener('submit',function(e){e.preventDefault();var file=form.querySelector('input[type=file]').files[0];if(!file)return;
 out.innerHTML='';up.value=0;im.value=0;say.textContent='Uploading…';
 var x=new XMLHttpRequest();x.open('POST','/users/'+user+'/imports');x.setRequestHeader('content-type','application/zip');
 x.upload.onprogress=function(p){if(p.lengthComputable)up.value=p.loaded/p.total};
 x.onload=function(){var s={};try{s=JSON.parse(x.responseText)}catch(err){}
  if(x.status===202){up.value=1;poll(s.id)}else{say.textContent='Not imported: '+(s.message||'the upload failed')+(s.code?' ('+s.code+')':'')+'. Nothing of this file was sold.'}};
 x.onerror=function(){say.textContent='The upload stopped. Nothing of this file was sold; please try again.'};
 x.send(file)})})()`

/** The script's CSP source (`'sha256-...'`). */
export const IMPORT_SCRIPT_SOURCE = `'sha256-${createHash('sha256').update(IMPORT_SCRIPT).digest('base64')}'`

export function importSection(userId: string): string {
  return `<section id="imports"><h2>Sell what you already have</h2>
<p>Upload the <strong>export.zip</strong> from Apple Health (Health app → your picture → Export All Health Data) or a <strong>Google Takeout</strong> archive with Fit data. It is read as it arrives, kept encrypted only until it is read, and then deleted. Only the kinds of data you sell are offered, and never your device names, apps or file names.</p>
<form id="import-form" data-user="${userId.replace(/[^A-Za-z0-9_-]/g, '')}"><input type="file" name="export" accept=".zip,application/zip" required> <button type="submit">Upload</button></form>
<p><label>Upload <progress id="upload-bar" max="1" value="0"></progress></label> <label>Import <progress id="import-bar" max="1" value="0"></progress></label></p>
<p id="import-status" role="status" class="muted"></p><div id="import-summary"></div>
<script>${IMPORT_SCRIPT}</script></section>`
}

/** The account page with the upload section before its end. */
export function withImportSection(page: string, userId: string): string {
  const at = page.lastIndexOf('</body>')
  return at < 0 ? page : `${page.slice(0, at)}${importSection(userId)}${page.slice(at)}`
}
