import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { gunzipSync } from 'node:zlib'

/**
 * The Hub contracts (ProjectRegistryV1, MarketplaceV4) are published only in
 * `@streamr/hub-contracts`, whose runtime dependencies (hardhat, ethers 5, streamr-client 6: about
 * 600 packages and 700 MB) are only needed to build it. So instead of installing it, its tarball is
 * fetched once with `npm pack` (the ordinary client, so the user's registry, proxy and auth settings
 * apply), checked against the integrity the registry published, and kept in node_modules/.cache.
 */
export const HUB_CONTRACTS_PACKAGE = '@streamr/hub-contracts@1.1.2'
const HUB_CONTRACTS_INTEGRITY = 'sha512-pjTizEUfERa33k7Y4xAtV02wtDL5OCIxdtOmo77nI+vUI1la1TrlTS+BQA2nZGK64ocBmpP5VrYT8covfO93Vg=='
const TARBALL = 'streamr-hub-contracts-1.1.2.tgz'

const ARTIFACT_PATHS = {
  ProjectRegistryV1: 'package/dist/artifacts/contracts/ProjectRegistry/ProjectRegistryV1.sol/ProjectRegistryV1.json',
  MarketplaceV4: 'package/dist/artifacts/contracts/Marketplace/MarketplaceV4.sol/MarketplaceV4.json',
} as const

export type HubContractName = keyof typeof ARTIFACT_PATHS

export interface ContractArtifact {
  readonly abi: readonly unknown[]
  readonly bytecode: string
}

export interface HubArtifactsOptions {
  /** Where the tarball is kept (default: the repository's node_modules/.cache/fitstream). */
  cacheDir?: string
  log?: ((msg: string) => void) | undefined
}

const run = promisify(execFile)
const defaultCacheDir = (): string => fileURLToPath(new URL('../../../node_modules/.cache/fitstream', import.meta.url))

let loaded: Promise<Record<HubContractName, ContractArtifact>> | undefined

/** ABI and bytecode of the Hub contracts; fetched from the npm registry on first use only. */
export function loadHubArtifacts(options: HubArtifactsOptions = {}): Promise<Record<HubContractName, ContractArtifact>> {
  loaded ??= readArtifacts(options).catch((error: unknown) => {
    loaded = undefined
    throw error
  })
  return loaded
}

async function readArtifacts(options: HubArtifactsOptions): Promise<Record<HubContractName, ContractArtifact>> {
  const tarball = await cachedTarball(options.cacheDir ?? defaultCacheDir(), options.log)
  const files = readTarGz(tarball, new Set(Object.values(ARTIFACT_PATHS)))
  const artifact = (name: HubContractName): ContractArtifact => {
    const text = files.get(ARTIFACT_PATHS[name])
    if (text === undefined) throw new Error(`${HUB_CONTRACTS_PACKAGE} has no ${ARTIFACT_PATHS[name]}`)
    const { abi, bytecode } = JSON.parse(text) as ContractArtifact
    return { abi, bytecode }
  }
  return { ProjectRegistryV1: artifact('ProjectRegistryV1'), MarketplaceV4: artifact('MarketplaceV4') }
}

async function cachedTarball(cacheDir: string, log: ((msg: string) => void) | undefined): Promise<Buffer> {
  const path = join(cacheDir, TARBALL)
  try {
    const cached = readFileSync(path)
    if (integrityOf(cached) === HUB_CONTRACTS_INTEGRITY) return cached
    log?.(`${path} does not match its integrity: fetching it again`)
  } catch {
    // not cached yet
  }
  log?.(`fetching ${HUB_CONTRACTS_PACKAGE} (once) into ${cacheDir}`)
  mkdirSync(cacheDir, { recursive: true })
  // Test files run in parallel processes; each packs into its own directory and the rename is atomic.
  const scratch = join(tmpdir(), `fitstream-hub-contracts-${randomBytes(6).toString('hex')}`)
  mkdirSync(scratch, { recursive: true })
  try {
    await npm(['pack', HUB_CONTRACTS_PACKAGE, '--pack-destination', scratch, '--silent'])
    const packed = readdirSync(scratch).find((name) => name.endsWith('.tgz'))
    if (packed === undefined) throw new Error('npm pack wrote no tarball')
    const tarball = readFileSync(join(scratch, packed))
    const integrity = integrityOf(tarball)
    if (integrity !== HUB_CONTRACTS_INTEGRITY) {
      throw new Error(`${HUB_CONTRACTS_PACKAGE} from the registry has integrity ${integrity}, expected ${HUB_CONTRACTS_INTEGRITY}`)
    }
    renameSync(join(scratch, packed), path)
    return tarball
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
}

async function npm(args: string[]): Promise<void> {
  // Under `npm test`/`npm run`, npm_execpath is the npm that is running: use that one.
  const npmCli = process.env.npm_execpath
  const [command, argv] = npmCli !== undefined && /\.c?js$/.test(npmCli) ? [process.execPath, [npmCli, ...args]] : ['npm', args]
  try {
    await run(command, argv, { timeout: 120_000, maxBuffer: 4 * 1024 * 1024 })
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr?.trim() || (error instanceof Error ? error.message : String(error))
    throw new Error(`could not fetch ${HUB_CONTRACTS_PACKAGE} with npm pack (the npm registry is needed once): ${detail}`, { cause: error })
  }
}

function integrityOf(data: Buffer): string {
  return `sha512-${createHash('sha512').update(data).digest('base64')}`
}

/** The wanted regular files of a .tar.gz, by path; npm tarballs are plain ustar. */
function readTarGz(gz: Buffer, wanted: ReadonlySet<string>): Map<string, string> {
  const tar = gunzipSync(gz)
  const files = new Map<string, string>()
  for (let offset = 0; offset + 512 <= tar.length;) {
    const header = tar.subarray(offset, offset + 512)
    if (header.every((byte) => byte === 0)) break
    const field = (start: number, length: number): string => header.toString('utf8', start, start + length).replace(/\0.*$/s, '')
    const name = field(0, 100)
    const prefix = field(345, 155)
    const size = parseInt(field(124, 12).trim() || '0', 8)
    const type = field(156, 1)
    const path = prefix === '' ? name : `${prefix}/${name}`
    const body = offset + 512
    if ((type === '0' || type === '') && wanted.has(path)) files.set(path, tar.toString('utf8', body, body + size))
    offset = body + Math.ceil(size / 512) * 512
  }
  return files
}
