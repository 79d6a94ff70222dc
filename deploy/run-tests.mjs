#!/usr/bin/env node
// `npm test` after the build: lint and vitest side by side. Lint (ESLint, Prettier, the tests' type
// check, the import-cycle check) needs half a minute of CPU and nothing the tests use, and the unit
// project that vitest runs first leaves room for it; the system project, which wants the machine to
// itself, starts after both. Lint's output is printed whole once it ends, so that it never
// interleaves with vitest's. Arguments go to vitest. Exits non-zero when either fails.
import { spawn } from 'node:child_process'

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

const lint = new Promise((resolve) => {
  const child = spawn(npm, ['run', '--silent', 'lint'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const output = []
  child.stdout.on('data', (chunk) => output.push(chunk))
  child.stderr.on('data', (chunk) => output.push(chunk))
  child.on('error', (error) => resolve({ code: 1, output: `${error.message}\n` }))
  child.on('close', (code, signal) => resolve({ code: code ?? (signal === null ? 1 : 128), output: Buffer.concat(output).toString() }))
})

const vitest = new Promise((resolve) => {
  const child = spawn('npx', ['vitest', 'run', ...process.argv.slice(2)], { stdio: 'inherit' })
  child.on('error', () => resolve(1))
  child.on('close', (code, signal) => resolve(code ?? (signal === null ? 1 : 128)))
})

const linted = await lint
process.stdout.write(`\n--- lint (${linted.code === 0 ? 'passed' : `failed, exit code ${linted.code}`}) ---\n${linted.output}\n`)
const tested = await vitest
if (linted.code !== 0) process.stderr.write('npm test: lint failed (its output is above)\n')
process.exit(linted.code !== 0 ? linted.code : tested)
