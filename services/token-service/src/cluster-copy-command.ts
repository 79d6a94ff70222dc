import { parseArgs } from 'node:util'
import { ConfigError, commonEnv, createRedis, isCluster, parseEnv, redisTargetOf, waitForRedis, type Env } from '@fitstream/shared'
import { copyToCluster } from './cluster-copy.js'

const USAGE = `Usage: fitstream redis copy-to-cluster --from <redis-url>

Copies every key under QUEUE_PREFIX from the single Redis at --from to the Redis Cluster of
REDIS_CLUSTER_NODES (with REDIS_URL's user, password and TLS), each under its cluster name
(docs/capacity.md, "Moving to a managed cluster"). Stop every service and let the queues empty first.
`

/** `fitstream redis copy-to-cluster`: exit code 0 when every key was copied, 64 on a usage error. */
export async function runClusterCopyCommand(argv: readonly string[], env: Env, out = (text: string) => process.stdout.write(text)): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...argv], options: { from: { type: 'string' }, help: { type: 'boolean' } }, allowPositionals: true })
  if (values.help === true) {
    out(USAGE)
    return 0
  }
  if (positionals[0] !== 'copy-to-cluster' || positionals.length !== 1 || values.from === undefined) {
    process.stderr.write(USAGE)
    return 64
  }
  let config
  try {
    config = parseEnv(commonEnv, env)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    process.stderr.write(`fitstream redis: ${error.message}\n`)
    return 78
  }
  const target = redisTargetOf(config)
  if (!isCluster(target)) {
    process.stderr.write('fitstream redis: set REDIS_CLUSTER_NODES to the cluster to copy to\n')
    return 64
  }
  const from = createRedis(values.from, 'producer', 'fitstream-copy-from')
  const to = createRedis(target, 'producer', 'fitstream-copy-to')
  try {
    await Promise.all([waitForRedis(from), waitForRedis(to)])
    const report = await copyToCluster(from, to, config.QUEUE_PREFIX)
    out(`copied ${report.copied} keys under ${config.QUEUE_PREFIX}: ${report.renamed} of them renamed for the cluster; queues: ${report.queues.join(', ')}\n`)
    return 0
  } finally {
    from.disconnect()
    to.disconnect()
  }
}
