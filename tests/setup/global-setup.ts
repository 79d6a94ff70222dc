import { Redis } from 'ioredis'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string
    /** True in the soak tier (`npm run test:soak`): outages and waits at their full length. */
    soak?: boolean
  }
}

const LOCAL_REDIS = 'redis://127.0.0.1:6379'

/**
 * Redis for the tests: REDIS_URL when set; otherwise a Redis already answering on the local default
 * port; otherwise a throwaway Redis container (testcontainers, needs a Docker engine).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const fromEnv = process.env.REDIS_URL
  if (fromEnv !== undefined && fromEnv !== '') {
    await assertAnswers(fromEnv)
    project.provide('redisUrl', fromEnv)
    return async () => {}
  }
  if (await answers(LOCAL_REDIS)) {
    project.provide('redisUrl', LOCAL_REDIS)
    return async () => {}
  }
  const { GenericContainer } = await import('testcontainers')
  const container = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start()
  const url = `redis://${container.getHost()}:${container.getMappedPort(6379)}`
  project.provide('redisUrl', url)
  return async () => {
    await container.stop()
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    await assertAnswers(url)
    return true
  } catch {
    return false
  }
}

async function assertAnswers(url: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2_000 })
  try {
    await redis.connect()
    await redis.ping()
  } catch (error) {
    throw new Error(`Redis at ${url} does not answer: ${error instanceof Error ? error.message : String(error)}`)
  } finally {
    redis.disconnect()
  }
}
