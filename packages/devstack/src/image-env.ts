import { readFileSync } from 'node:fs'

const DOCKERFILE = new URL('../../../Dockerfile', import.meta.url)

/**
 * The environment the image gives every service: the `ENV` lines of the Dockerfile's last stage
 * (Node's heap flags, malloc's arena limit, the SDK's JSON logs). The benchmark starts the services
 * with it, so the memory and CPU it reports are those of the processes compose runs, and a change to
 * a runtime setting is made once, in the Dockerfile.
 */
export function imageEnvironment(dockerfile: string = readFileSync(DOCKERFILE, 'utf8')): Record<string, string> {
  const lines = dockerfile.split('\n')
  const lastStage = lines.findLastIndex((line) => /^FROM\s/i.test(line))
  const env: Record<string, string> = {}
  for (const line of lines.slice(lastStage + 1)) {
    if (!/^ENV\s/i.test(line)) continue
    const setting = /^ENV\s+([A-Za-z_][A-Za-z0-9_]*)=("[^"\\]*"|\S*)\s*$/i.exec(line)
    // One KEY=value an ENV line, quoted without escapes or unquoted: anything else is refused rather
    // than read differently from Docker.
    if (setting === null) throw new Error(`Dockerfile: write "${line}" as ENV KEY=value, one a line`)
    env[setting[1]!] = setting[2]!.replace(/^"(.*)"$/, '$1')
  }
  return env
}
