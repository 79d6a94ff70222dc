import { afterAll, afterEach, beforeAll } from 'vitest'
import type { Redis } from 'ioredis'
import type { StackOptions, Stack, Subscriber } from '@fitstream/devstack'
import { StageQueues, commonEnv, createLogger, parseEnv, retryPolicies } from '@fitstream/shared'
import { PublisherHarness } from '../services/publisher/test/harness.js'
import { DeliveryCheck } from './delivery.js'
import { redisUrl, testRedis, uniquePrefix } from './helpers.js'

/**
 * How the system tests start what they test and stop it again: each registers its file's
 * beforeAll and afterAll and hands back what they started. A test file's own hooks, registered
 * after, run after the start and before the stop (vitest runs after-hooks in reverse order).
 */

/** Reads what a beforeAll started, or says that the test ran before it. */
function started<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is used before the file's beforeAll has started it`)
  return value
}

/** A whole FitStream and a buyer's subscriber to it, for the tests of one file. */
export interface StackSystem {
  /** The file's Redis key and queue prefix. */
  readonly prefix: string
  readonly stack: Stack
  readonly subscriber: Subscriber
  /** What the subscriber received, against what the users a test registers (`check.add`) should have. */
  readonly check: DeliveryCheck
}

/** Stack.start's options less those useStack sets: the Redis to use and the file's prefix. */
export type StackSetup = Omit<StackOptions, 'redisUrl' | 'prefix'>

/**
 * Starts a whole FitStream (every service a process, the fake Google, a local Streamr network) and
 * a buyer's subscriber before the file's tests, on a Redis prefix of its own named after `name`,
 * and stops them after. `setup` is a function where an option is only known at start (a free port).
 */
export function useStack(
  name: string,
  setup: StackSetup | (() => Promise<StackSetup>),
  hooks: {
    /** What must happen before the stack stops, e.g. a frozen chain thawed so the services can shut down; default: nothing. */
    readonly beforeStop?: (stack: Stack) => void | Promise<void>
  } = {},
): StackSystem {
  const prefix = uniquePrefix(name)
  let check: DeliveryCheck | undefined
  beforeAll(async () => {
    const options = typeof setup === 'function' ? await setup() : setup
    check = await DeliveryCheck.start({ redisUrl: redisUrl(), prefix, ...options })
  })
  afterAll(async () => {
    if (check === undefined) return
    await hooks.beforeStop?.(check.stack)
    await check.stack.stop()
  })
  return {
    prefix,
    get stack() {
      return started(check, 'the stack').stack
    },
    get subscriber() {
      return started(check, 'the subscriber').subscriber
    },
    get check() {
      return started(check, 'the delivery check')
    },
  }
}

/** A local Streamr network with the seller's publisher tools, and the queues a publisher on the file's prefix reads. */
export interface PublisherSystem {
  /** The file's Redis key and queue prefix. */
  readonly prefix: string
  readonly redis: Redis
  readonly queues: StageQueues
  readonly harness: PublisherHarness
  /** The variables a publisher needs to work the file's queues (REDIS_URL, QUEUE_PREFIX), with `env` over them. */
  publisherEnv(env?: Readonly<Record<string, string>>): Record<string, string>
}

export interface PublisherSystemOptions {
  /** Deploy the Hub's contracts too (PublisherHarness.start's `hub`); default false. */
  readonly hub?: boolean
  /** The variables the queues' retry policy is read from, as a publisher's would be; default: none (production's policy). */
  readonly retryEnv?: Readonly<Record<string, string>>
  /** What `streams provision` is given once the network is up (its types, partitions, grants); default: nothing is provisioned. */
  readonly provision?: (harness: PublisherHarness) => readonly string[]
  /** What a failed test prints: the publisher's log and what the buyers saw. Default: nothing. */
  readonly failureLog?: () => string
}

/**
 * Starts a local Streamr network for the publisher (PublisherHarness) before the file's tests,
 * provisioned as `provision` says, and queues on a Redis prefix of its own named after `name`;
 * stops the network (and every process started through it) after, and removes the prefix's keys.
 */
export function usePublisherHarness(name: string, options: PublisherSystemOptions = {}): PublisherSystem {
  const prefix = uniquePrefix(name)
  const { redis, cleanup } = testRedis(prefix)
  const queues = new StageQueues({
    connection: redis,
    prefix,
    retry: retryPolicies(parseEnv(commonEnv, { ...options.retryEnv })),
    logger: createLogger('test', 'silent'),
  })
  let harness: PublisherHarness | undefined
  beforeAll(async () => {
    harness = await PublisherHarness.start({ hub: options.hub === true })
    if (options.provision !== undefined) await harness.cli(['streams', 'provision', ...options.provision(harness)])
  })
  const { failureLog } = options
  if (failureLog !== undefined) {
    afterEach((context) => {
      if (context.task.result?.state === 'fail') process.stderr.write(failureLog())
    })
  }
  afterAll(async () => {
    await harness?.stop()
    await queues.close()
    await cleanup()
  })
  return {
    prefix,
    redis,
    queues,
    get harness() {
      return started(harness, 'the publisher harness')
    },
    publisherEnv: (env = {}) => ({ REDIS_URL: redisUrl(), QUEUE_PREFIX: prefix, ...env }),
  }
}
