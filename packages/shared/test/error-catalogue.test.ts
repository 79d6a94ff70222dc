import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { format, resolveConfig } from 'prettier'
import { describe, expect, it } from 'vitest'
import { ERROR_CATALOGUE, type ErrorCatalogueEntry, type ErrorRetry } from '../src/error-catalogue.js'

// Modelled on Fastify's errors test: the catalogue, the code that raises the errors and the
// document operators read must agree, so none of them can drift from the others.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const DOC = join(ROOT, 'docs/errors.md')
const REGENERATE = 'UPDATE_ERRORS_DOC=1 npx vitest run packages/shared/test/error-catalogue.test.ts'

interface SourceFile {
  readonly path: string
  readonly text: string
}

function sourceFiles(): SourceFile[] {
  const files: SourceFile[] = []
  for (const group of ['packages', 'services']) {
    for (const workspace of readdirSync(join(ROOT, group))) {
      const src = join(ROOT, group, workspace, 'src')
      if (!existsSync(src)) continue
      for (const entry of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
        if (!entry.endsWith('.ts') || entry.endsWith('.d.ts')) continue
        const path = join(src, entry)
        files.push({ path: relative(ROOT, path), text: readFileSync(path, 'utf8') })
      }
    }
  }
  return files
}

const CODE = /FST_ERR_[A-Z0-9_]*/g

/** Whole codes written in the source, and the prefixes of codes built in a template (`FST_ERR_STREAMR_${code}`). */
function codesInSource(files: readonly SourceFile[]) {
  const literal = new Map<string, string[]>()
  const templates: { prefix: string; file: SourceFile }[] = []
  for (const file of files) {
    for (const match of file.text.matchAll(CODE)) {
      const code = match[0]
      const next = file.text[match.index + code.length]
      if (code.endsWith('_') && next === '$') templates.push({ prefix: code, file })
      else if (!code.endsWith('_')) literal.set(code, [...(literal.get(code) ?? []), file.path])
    }
  }
  return { literal, templates }
}

const RETRY_TEXT: Record<ErrorRetry, string> = {
  retried: 'yes',
  'retried if transient': 'if transient',
  deferred: 'waits',
  'not retried': 'no',
  discarded: 'discarded',
  'not a job error': '-',
}

const RETRY_LEGEND: Record<ErrorRetry, string> = {
  retried: 'BullMQ retries the job with exponential backoff; when the attempts run out it goes to its stage\u2019s dead-letter queue.',
  'retried if transient': 'retried when the upstream status says it may pass (408, 429, 5xx, no answer), otherwise dead-lettered at once.',
  deferred: 'the job runs again later without using an attempt.',
  'not retried': 'permanent: the job goes to the dead-letter queue at once (unless the meaning says otherwise).',
  discarded: 'the job\u2019s work must not be done: it completes as discarded, with no retry and no dead letter.',
  'not a job error': 'never a job\u2019s failure: an HTTP answer, or a service refusing to start.',
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|')
}

async function renderErrorsDoc(): Promise<string> {
  const rows = Object.entries(ERROR_CATALOGUE as Record<string, ErrorCatalogueEntry>)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([code, entry]) => {
      const http = entry.http.map((answer) => `${answer.status} (${answer.on})`).join(', ')
      return `| \`${code}\` | ${cell(http === '' ? '-' : http)} | ${RETRY_TEXT[entry.retry]} | ${cell(entry.raisedBy)} | ${cell(entry.meaning)} |`
    })
  const legend = (Object.keys(RETRY_TEXT) as ErrorRetry[]).map((policy) => `- **${RETRY_TEXT[policy]}**: ${RETRY_LEGEND[policy]}`)
  const markdown = [
    '# Error codes',
    '',
    '<!-- Generated from packages/shared/src/error-catalogue.ts: edit the catalogue, then run',
    `     ${REGENERATE} -->`,
    '',
    'Every error FitStream raises has a stable code. Logs carry it as `code`, dead letters as `error.code`',
    '(filter them with `fitstream dlq list --code CODE` or `GET /dead-letters/entries?code=CODE`), metrics as the `code` label of',
    '`fitstream_jobs_failed_total` and `fitstream_jobs_dead_lettered_total`, and HTTP error answers as `code`. Codes are never renamed,',
    'so alerts and filters written against them keep working.',
    '',
    'The **Retried** column says what a stage worker does with a job that fails with the code:',
    '',
    ...legend,
    '',
    '**HTTP** lists the answers given when the error happens. A JSON answer carries the code as `code`; a 5xx answer carries only its status',
    '(the code is in the service log); an HTML page says what happened in words.',
    '',
    '| Code | HTTP | Retried | Raised by | Meaning |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n')
  const options = await resolveConfig(DOC)
  return format(markdown, { ...options, parser: 'markdown' })
}

describe('error catalogue', () => {
  const files = sourceFiles()
  const { literal, templates } = codesInSource(files)
  const catalogued = Object.keys(ERROR_CATALOGUE)

  it('lists every FST_ERR_* code written in packages/*/src and services/*/src', () => {
    const missing = [...literal].filter(([code]) => !catalogued.includes(code)).map(([code, paths]) => `${code} (${[...new Set(paths)].join(', ')})`)
    expect(missing, 'add these codes to packages/shared/src/error-catalogue.ts').toEqual([])
    const uncovered = templates
      .filter(({ prefix }) => !catalogued.some((code) => code.startsWith(prefix)))
      .map(({ prefix, file }) => `${prefix}* (${file.path})`)
    expect(uncovered, 'codes built in a template need their possible values in the catalogue').toEqual([])
  })

  it('lists no code that nothing raises any more', () => {
    const used = (code: string) =>
      literal.has(code) ||
      templates.some(({ prefix, file }) => code.startsWith(prefix) && new RegExp(`['"\`]${code.slice(prefix.length)}['"\`]`).test(file.text))
    expect(
      catalogued.filter((code) => !used(code)),
      'remove these codes from the catalogue (and regenerate docs/errors.md)',
    ).toEqual([])
  })

  it('has one-sentence-or-two meanings and real HTTP statuses', () => {
    for (const [code, entry] of Object.entries(ERROR_CATALOGUE as Record<string, ErrorCatalogueEntry>)) {
      expect(entry.meaning.length, code).toBeGreaterThan(20)
      for (const answer of entry.http) expect(answer.status >= 400 && answer.status < 600, code).toBe(true)
    }
  })

  it('is what docs/errors.md says', async () => {
    const rendered = await renderErrorsDoc()
    if (process.env['UPDATE_ERRORS_DOC'] === '1') writeFileSync(DOC, rendered)
    const written = existsSync(DOC) ? readFileSync(DOC, 'utf8') : ''
    expect(written === rendered, `docs/errors.md is out of date with the catalogue; regenerate it: ${REGENERATE}`).toBe(true)
  })
})
