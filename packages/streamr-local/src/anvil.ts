import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'

export interface StartAnvilOptions {
  host: string
  /** 0 lets anvil pick a free port itself, which cannot race with other processes. */
  port: number
  chainId: number
  mnemonic: string
  accountCount: number
  log?: ((msg: string) => void) | undefined
  startTimeoutMs?: number
}

export interface AnvilProcess {
  readonly rpcUrl: string
  readonly port: number
  readonly pid: number
  stop(): Promise<void>
}

const STOP_TIMEOUT_MS = 5_000

/**
 * Path of the anvil executable. The package's own bin (`@foundry-rs/anvil/bin.mjs`) is a Node
 * wrapper that spawns the binary from a per-platform optional dependency; spawning that binary
 * directly saves a Node start-up and leaves us holding anvil's own pid.
 */
export function anvilBinaryPath(): string {
  const require = createRequire(import.meta.url)
  const wrapperDir = dirname(require.resolve('@foundry-rs/anvil/package.json'))
  const arch = process.arch === 'x64' ? 'amd64' : process.arch
  const platformPackage = `@foundry-rs/anvil-${process.platform}-${arch}`
  const binary = process.platform === 'win32' ? 'anvil.exe' : 'anvil'
  try {
    // Resolved from the wrapper, because the platform package is the wrapper's dependency.
    const fromWrapper = createRequire(join(wrapperDir, 'package.json'))
    return fromWrapper.resolve(`${platformPackage}/bin/${binary}`)
  } catch (err) {
    throw new Error(`anvil binary not found: ${platformPackage} is not installed ` + `(does @foundry-rs/anvil support ${process.platform}/${process.arch}?)`, {
      cause: err,
    })
  }
}

// Runs anvil through a tiny shell that first forks a watchdog and then execs anvil, so anvil keeps
// the pid we spawned. The watchdog blocks reading the stdin pipe we hold; the kernel closes that
// pipe however this process ends (even SIGKILL or a crash, where no exit hook runs), and the
// watchdog then kills anvil. Without it an orphaned anvil would keep its port and RAM forever.
const WATCHDOG_SCRIPT = 'exec 3<&0 </dev/null; (read -r _ <&3; kill $$) >/dev/null 2>&1 & exec "$0" "$@" 3<&-'

export async function startAnvil(opts: StartAnvilOptions): Promise<AnvilProcess> {
  const args = [
    '--host',
    opts.host,
    '--port',
    String(opts.port),
    '--chain-id',
    String(opts.chainId),
    '--mnemonic',
    opts.mnemonic,
    '--accounts',
    String(opts.accountCount),
    '--color',
    'never',
  ]
  const binary = anvilBinaryPath()
  const child =
    process.platform === 'win32'
      ? spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true })
      : spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, binary, ...args], {
          stdio: ['pipe', 'pipe', 'pipe'],
        })
  const { pid } = child
  if (pid === undefined) {
    const [err] = (await once(child, 'error')) as [Error]
    throw new Error(`Could not start anvil (${binary}): ${err.message}`, { cause: err })
  }

  killOnProcessExit(child)
  child.once('exit', () => {
    // Lets the watchdog finish; it exists only to outlive us.
    child.stdin?.destroy()
  })

  const stderrTail: string[] = []
  pipeLines(child, 'stderr', (line) => {
    stderrTail.push(line)
    if (stderrTail.length > 20) stderrTail.shift()
    opts.log?.(`[anvil] ${line}`)
  })

  let listening: { host: string; port: number }
  try {
    listening = await waitForListening(child, opts, () => stderrTail.join('\n'))
  } catch (err) {
    await stopChild(child)
    throw err
  }

  const rpcHost = listening.host.includes(':') ? `[${listening.host}]` : listening.host
  let stopping: Promise<void> | undefined
  return {
    rpcUrl: `http://${rpcHost}:${listening.port}`,
    port: listening.port,
    pid,
    stop: () => (stopping ??= stopChild(child)),
  }
}

const running = new Set<ChildProcess>()

// A normal exit, process.exit() or an uncaught exception runs 'exit' listeners; killing there
// rather than waiting for the watchdog frees the port by the time the process is gone. One shared
// listener, so that many networks in one process do not trip MaxListenersExceededWarning.
function killOnProcessExit(child: ChildProcess): void {
  if (running.size === 0) process.on('exit', killAllRunning)
  running.add(child)
  child.once('exit', () => {
    running.delete(child)
    if (running.size === 0) process.off('exit', killAllRunning)
  })
}

function killAllRunning(): void {
  for (const child of running) child.kill('SIGKILL')
}

function waitForListening(child: ChildProcess, opts: StartAnvilOptions, stderr: () => string): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    let settled = false
    const fail = (msg: string): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      const details = stderr()
      reject(new Error(details ? `${msg}\n${details}` : msg))
    }
    const timeoutMs = opts.startTimeoutMs ?? 15_000
    const timer = setTimeout(() => fail(`anvil did not start within ${timeoutMs} ms`), timeoutMs)
    child.once('exit', (code, signal) => fail(`anvil exited during start-up (code ${code ?? 'none'}, signal ${signal ?? 'none'})`))
    // anvil keeps logging every RPC call to stdout, so the pipe is read (and dropped unless
    // logging) for anvil's whole life; a full pipe would block it.
    pipeLines(child, 'stdout', (line) => {
      opts.log?.(`[anvil] ${line}`)
      if (settled) return
      const match = /^Listening on (.+):(\d+)$/.exec(line.trim())
      if (match?.[1] !== undefined && match[2] !== undefined) {
        settled = true
        clearTimeout(timer)
        resolve({ host: match[1], port: Number(match[2]) })
      }
    })
  })
}

function pipeLines(child: ChildProcess, stream: 'stdout' | 'stderr', onLine: (line: string) => void): void {
  const input = child[stream]
  if (input === null) return
  createInterface({ input, crlfDelay: Infinity }).on('line', onLine)
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
  try {
    await exited
  } finally {
    clearTimeout(timer)
  }
}
