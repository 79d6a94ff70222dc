#!/usr/bin/env node
/**
 * Operator commands of the token service, run with the service's own environment:
 *   node services/token-service/dist/cli.js tokens reencrypt
 *   node services/token-service/dist/cli.js dlq list|show|replay|purge …   (also `fitstream dlq …`)
 *   node services/token-service/dist/cli.js redis copy-to-cluster --from <url>   (also `fitstream redis …`)
 */
import { SLOT_GROUPS, createRedis, isCluster, loadConfigOrExit, redisTargetOf, slotGroupPrefix, waitForRedis } from '@fitstream/shared'
import { loadConfig } from './config.js'
import { runClusterCopyCommand } from './cluster-copy-command.js'
import { runDlqCommand } from './dlq-command.js'
import { reencryptTokens } from './reencrypt.js'

const USAGE = 'usage: fitstream-token-service tokens reencrypt | dlq <command> (dlq --help) | redis copy-to-cluster --from <url>\n'

async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === 'dlq') return runDlqCommand(argv.slice(1), process.env)
  if (argv[0] === 'redis') return runClusterCopyCommand(argv.slice(1), process.env)
  if (argv[0] !== 'tokens' || argv[1] !== 'reencrypt' || argv.length !== 2) {
    process.stderr.write(USAGE)
    return 64
  }
  const config = loadConfigOrExit('token-service', loadConfig)
  const target = redisTargetOf(config)
  const redis = createRedis(target, 'producer', 'token-service-cli')
  try {
    await waitForRedis(redis)
    const report = await reencryptTokens(redis, slotGroupPrefix(config.QUEUE_PREFIX, SLOT_GROUPS.users, isCluster(target)), {
      refresh: config.REFRESH_TOKEN_KEYS,
      access: config.ACCESS_TOKEN_KEYS,
    })
    process.stdout.write(
      `re-encrypted ${report.reencrypted.refreshTokens} refresh and ${report.reencrypted.accessTokens} access tokens of ${report.users} users ` +
        `under keys ${config.REFRESH_TOKEN_KEYS.activeKeyId} and ${config.ACCESS_TOKEN_KEYS.activeKeyId}; ` +
        `${report.current.refreshTokens + report.current.accessTokens} were already current, ${report.failed.length} failed\n`,
    )
    for (const failure of report.failed) process.stderr.write(`user ${failure.userId}, ${failure.field}: ${failure.reason}\n`)
    return report.failed.length === 0 ? 0 : 1
  } finally {
    redis.disconnect()
  }
}

process.exitCode = await main(process.argv.slice(2))
