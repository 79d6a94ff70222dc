#!/usr/bin/env node
// Fails when a package's own modules import each other in a cycle (a module that, through its
// imports, imports itself). Run by `npm run lint`. Relative imports only: packages depend on each
// other through their package names, and the workspace graph has no cycles by construction.
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

const root = resolve(new URL('..', import.meta.url).pathname)
const IMPORT = /(?:^|\n)\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]/g

function sourceFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return name === 'node_modules' || name === 'dist' ? [] : sourceFiles(path)
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : []
  })
}

/** Each module's value imports (type-only imports vanish at compile time and make no cycle). */
function importGraph(files) {
  const known = new Set(files)
  const graph = new Map()
  for (const file of files) {
    const targets = []
    for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const target = resolve(dirname(file), match[1].replace(/\.js$/, '.ts'))
      if (known.has(target)) targets.push(target)
    }
    graph.set(file, targets)
  }
  return graph
}

function findCycles(graph) {
  const cycles = []
  const state = new Map() // undefined: unvisited, 1: on the stack, 2: done
  const stack = []
  const visit = (node) => {
    state.set(node, 1)
    stack.push(node)
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 1) cycles.push([...stack.slice(stack.indexOf(next)), next])
      else if (state.get(next) === undefined) visit(next)
    }
    stack.pop()
    state.set(node, 2)
  }
  for (const node of graph.keys()) if (state.get(node) === undefined) visit(node)
  return cycles
}

const folders = ['packages', 'services'].flatMap((top) => readdirSync(join(root, top)).map((name) => join(root, top, name, 'src')))
const files = folders.filter((dir) => statSync(dir, { throwIfNoEntry: false })?.isDirectory()).flatMap(sourceFiles)
const cycles = findCycles(importGraph(files))
for (const cycle of cycles) process.stderr.write(`import cycle: ${cycle.map((file) => relative(root, file)).join(' -> ')}\n`)
if (cycles.length > 0) process.exit(1)
process.stdout.write(`no import cycles among ${files.length} modules\n`)
