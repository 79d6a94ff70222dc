import { createInterface } from 'node:readline/promises'
import { parseArgs } from 'node:util'
import {
  DeadLetters,
  STAGE_NAMES,
  StageQueues,
  commonEnv,
  createLogger,
  createRedis,
  isCluster,
  redisTargetOf,
  parseEnv,
  redactDeadLetter,
  retryPolicies,
  waitForRedis,
  type DeadLetterFilter,
  type Env,
  type Stage,
} from '@fitstream/shared'

export const DLQ_USAGE = `Usage: fitstream dlq <command> [options]

Dead letters: jobs that failed for good, per stage (${STAGE_NAMES.join(', ')}). Reads REDIS_URL and QUEUE_PREFIX.

Commands:
  list [filters]              counts per stage and error code, then the letters (raw data hidden)
  show <stage> <id>           one letter (raw data hidden)
  replay <stage> <id>         put it back on its stage (its job log keeps the history; never twice)
  replay [filters] | --all    replay every matching letter
  purge [filters] --yes       delete matching letters for good (asks when --yes is missing)

Filters: --stage S  --code FST_ERR_…  --since ISO-TIME  --until ISO-TIME
Other:   --json (machine-readable)  --limit N (list; default 50)
`

export async function runDlqCommand(argv: readonly string[], env: Env, out: (text: string) => void = (t) => void process.stdout.write(t)): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      stage: { type: 'string' },
      code: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      all: { type: 'boolean' },
      yes: { type: 'boolean' },
      json: { type: 'boolean' },
      limit: { type: 'string', default: '50' },
      help: { type: 'boolean' },
    },
  })
  const [command, stageArg, id] = positionals
  if (values.help === true || command === undefined) {
    out(DLQ_USAGE)
    return values.help === true ? 0 : 64
  }
  const filter = toFilter(values)
  if (typeof filter === 'string') {
    process.stderr.write(`fitstream dlq: ${filter}\n`)
    return 64
  }
  const config = parseEnv(commonEnv, env)
  const target = redisTargetOf(config)
  const redis = createRedis(target, 'producer', 'fitstream-dlq')
  const queues = new StageQueues({
    connection: redis,
    prefix: config.QUEUE_PREFIX,
    cluster: isCluster(target),
    retry: retryPolicies(config),
    logger: createLogger('fitstream-dlq', 'warn'),
  })
  const deadLetters = new DeadLetters(queues)
  const print = (value: unknown, text: () => string): void => out(values.json === true ? `${JSON.stringify(value, null, 2)}\n` : text())
  try {
    await waitForRedis(redis)
    switch (command) {
      case 'list': {
        const summary = await deadLetters.summary()
        const entries = (await deadLetters.list(filter)).sort((a, b) => b.letter.failedAt.localeCompare(a.letter.failedAt))
        const shown = entries.slice(0, Number(values.limit)).map(({ id: letterId, letter }) => ({ id: letterId, ...redactDeadLetter(letter) }))
        print(
          { summary, total: entries.length, entries: shown },
          () =>
            [
              ...summary.map((s) => `${s.stage.padEnd(10)} ${String(s.count).padStart(6)}  ${s.codes.map((c) => `${c.code} ${c.count}`).join(', ')}`),
              '',
              ...shown.map((e) => `${e.failedAt}  ${e.stage}/${e.id}  ${e.error.code}  ${e.error.message.slice(0, 100)}`),
              entries.length > shown.length ? `… ${entries.length - shown.length} more (--limit)` : '',
            ].join('\n') + '\n',
        )
        return 0
      }
      case 'show': {
        const stage = asStage(stageArg)
        if (stage === undefined || id === undefined) return usage(out)
        const entry = await deadLetters.get(stage, id)
        if (entry === undefined) return notFound(stage, id)
        print({ id: entry.id, ...redactDeadLetter(entry.letter) }, () => `${JSON.stringify({ id: entry.id, ...redactDeadLetter(entry.letter) }, null, 2)}\n`)
        return 0
      }
      case 'replay': {
        if (stageArg !== undefined) {
          const stage = asStage(stageArg)
          if (stage === undefined || id === undefined) return usage(out)
          const result = await deadLetters.replay(stage, id)
          if (result === undefined) return notFound(stage, id)
          print(result, () => `${result.replayed ? 'replayed' : 'already replayed'} ${stage}/${id} as job ${result.jobId}\n`)
          return 0
        }
        if (Object.keys(filter).length === 0 && values.all !== true) {
          process.stderr.write('fitstream dlq: give a filter or --all to replay every dead letter\n')
          return 64
        }
        const results = await deadLetters.replayMatching(filter)
        print(results, () => `replayed ${results.filter((r) => r.replayed).length} (${results.filter((r) => !r.replayed).length} had been replayed already)\n`)
        return 0
      }
      case 'purge': {
        const count = (await deadLetters.list(filter)).length
        if (values.yes !== true) {
          if (!process.stdin.isTTY) {
            process.stderr.write(`fitstream dlq: this would delete ${count} dead letters for good; repeat with --yes\n`)
            return 1
          }
          const prompt = createInterface({ input: process.stdin, output: process.stderr })
          const answer = await prompt.question(`Delete ${count} dead letters for good? Type "purge" to confirm: `)
          prompt.close()
          if (answer.trim() !== 'purge') {
            process.stderr.write('nothing deleted\n')
            return 1
          }
        }
        const purged = await deadLetters.purge(filter)
        print({ purged }, () => `purged ${purged} dead letters\n`)
        return 0
      }
      default:
        return usage(out)
    }
  } finally {
    await queues.close()
    redis.disconnect()
  }
}

function toFilter(values: { stage?: string; code?: string; since?: string; until?: string }): DeadLetterFilter | string {
  const filter: { -readonly [K in keyof DeadLetterFilter]: DeadLetterFilter[K] } = {}
  if (values.stage !== undefined) {
    const stage = asStage(values.stage)
    if (stage === undefined) return `unknown stage ${values.stage} (one of ${STAGE_NAMES.join(', ')})`
    filter.stage = stage
  }
  if (values.code !== undefined) filter.code = values.code
  for (const key of ['since', 'until'] as const) {
    const value = values[key]
    if (value === undefined) continue
    const ms = Date.parse(value)
    if (Number.isNaN(ms)) return `--${key} must be an ISO time, e.g. 2026-11-24T08:00:00Z`
    filter[key] = ms
  }
  return filter
}

function asStage(value: string | undefined): Stage | undefined {
  return STAGE_NAMES.find((s) => s === value)
}

function usage(out: (text: string) => void): number {
  out(DLQ_USAGE)
  return 64
}

function notFound(stage: Stage, id: string): number {
  process.stderr.write(`fitstream dlq: no dead letter ${id} in ${stage}-dlq\n`)
  return 1
}
