#!/usr/bin/env node
// The workspaces the image runs: every service, and the workspaces they depend on (transitively),
// never the test kits. Used by the Dockerfile, so that a service that starts depending on another
// workspace needs no change there.
//
//   node deploy/image-workspaces.mjs list             the workspace folders, one a line
//   node deploy/image-workspaces.mjs typescript       those of them that tsc builds
//   node deploy/image-workspaces.mjs npm-args         `-w <folder>` for each, for npm ci
//   node deploy/image-workspaces.mjs assemble <dest>  copy what each needs at run time into <dest>
import { cpSync, existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('../', import.meta.url).pathname
const readJson = (path) => JSON.parse(readFileSync(join(root, path), 'utf8'))

/** Workspace folders of the root package.json, by package name. */
function workspacesByName() {
  const byName = new Map()
  for (const folder of readJson('package.json').workspaces) {
    if (existsSync(join(root, folder, 'package.json'))) byName.set(readJson(join(folder, 'package.json')).name, folder)
  }
  return byName
}

export function runtimeWorkspaces() {
  const byName = workspacesByName()
  const wanted = new Set()
  const visit = (folder) => {
    if (wanted.has(folder)) return
    wanted.add(folder)
    const manifest = readJson(join(folder, 'package.json'))
    for (const dependency of Object.keys(manifest.dependencies ?? {})) {
      const local = byName.get(dependency)
      if (local !== undefined) visit(local)
    }
  }
  for (const folder of byName.values()) if (folder.startsWith('services/')) visit(folder)
  // @streamr/dht's node-datachannel is this workspace (the root package.json's override).
  const compat = byName.get('node-datachannel')
  if (compat !== undefined) wanted.add(compat)
  return [...wanted].sort()
}

/** A workspace's run-time files: its package.json and its `files` (default: dist, or everything but node_modules). */
function assemble(dest) {
  for (const folder of runtimeWorkspaces()) {
    const manifest = readJson(join(folder, 'package.json'))
    const entries =
      manifest.files ?? (existsSync(join(root, folder, 'dist')) ? ['dist'] : readdirSync(join(root, folder)).filter((name) => name !== 'node_modules'))
    for (const entry of ['package.json', ...entries]) {
      if (existsSync(join(root, folder, entry))) cpSync(join(root, folder, entry), join(dest, folder, entry), { recursive: true })
    }
  }
}

const [command, argument] = process.argv.slice(2)
if (command === 'list') process.stdout.write(`${runtimeWorkspaces().join('\n')}\n`)
else if (command === 'typescript')
  process.stdout.write(
    `${runtimeWorkspaces()
      .filter((folder) => existsSync(join(root, folder, 'tsconfig.json')))
      .join('\n')}\n`,
  )
else if (command === 'npm-args')
  process.stdout.write(
    runtimeWorkspaces()
      .flatMap((folder) => ['-w', folder])
      .join(' '),
  )
else if (command === 'assemble' && argument !== undefined) assemble(argument)
else if (command !== undefined) {
  process.stderr.write('usage: image-workspaces.mjs list | typescript | npm-args | assemble <dest>\n')
  process.exit(64)
}
