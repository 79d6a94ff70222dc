import { availableParallelism } from 'node:os'
import { defineConfig } from 'vitest/config'

/**
 * Tests that run a whole FitStream (every service as a process, a subscriber, a local Streamr
 * network): two at a time, in a project that vitest runs after the unit project (`groupOrder`), so
 * that they never share the machine with it. They wait on slots, locks and outages far more than
 * they compute (all of them, two at a time on a 2-core machine, took 0.9 of a core on average), and
 * no more than two run at once, so that their boots, the busiest part, rarely meet.
 */
const SYSTEM_LANES = 2
const SYSTEM_TESTS = [
  'tests/e2e.test.ts',
  'tests/erasure-scan.test.ts',
  'tests/health-api.test.ts',
  'tests/hub.test.ts',
  'tests/scale-out.test.ts',
  'tests/publisher-delivery.test.ts',
  'tests/release-slots.test.ts',
  'tests/release-slots-pipeline.test.ts',
  'tests/faults.test.ts',
  'tests/redis-restart.test.ts',
  'tests/google-faults.test.ts',
  'tests/streamr-outage.test.ts',
  'tests/network-nat.test.ts',
  'tests/network-browser.test.ts',
  'tests/network-gas.test.ts',
  'tests/network-buyer.test.ts',
  'tests/network-drop.test.ts',
  'tests/network-entry-point.test.ts',
  'tests/data-union.test.ts',
  'tests/redis-cluster.test.ts',
]

/**
 * Fault tests at full length in the soak tier (outages of minutes; the publisher killed at every point): only
 * `npm run test:soak` (FITSTREAM_SOAK=1) runs this project. The system project runs the same files
 * with the shortest outages that still prove the behaviour.
 */
const SOAK_TESTS = ['tests/google-faults.test.ts', 'tests/streamr-outage.test.ts', 'tests/release-slots.test.ts']
const withSoak = process.env.FITSTREAM_SOAK === '1'

/**
 * FitStream built into its image and run with docker compose on a real engine: minutes long and
 * needs Docker, so only `npm run test:compose` runs it (CI does, after setting up the engine).
 */
const COMPOSE_TESTS = ['tests/compose-stack.test.ts']
const withCompose = process.env.FITSTREAM_COMPOSE_TEST === '1'

export default defineConfig({
  test: {
    globalSetup: ['tests/setup/global-setup.ts'],
    // Every file runs in its own process: the Streamr SDK and services own process-wide handlers.
    pool: 'forks',
    // At least two files at once where a project allows it: vitest's default (one fewer than the
    // cores) is one on a 2-core machine, and these files wait on Redis and their own servers as much
    // as on the CPU. The system projects run SYSTEM_LANES files at a time whatever this says.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 30_000,
    hookTimeout: 180_000,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'tests/**/*.test.ts'],
          exclude: [...SYSTEM_TESTS, ...COMPOSE_TESTS],
        },
      },
      {
        extends: true,
        test: { name: 'system', include: SYSTEM_TESTS, maxWorkers: SYSTEM_LANES, sequence: { groupOrder: 1 } },
      },
      ...(withSoak ? [{ extends: true as const, test: { name: 'soak', include: SOAK_TESTS, fileParallelism: false, provide: { soak: true } } }] : []),
      ...(withCompose ? [{ extends: true as const, test: { name: 'compose', include: COMPOSE_TESTS, testTimeout: 600_000, hookTimeout: 1_800_000 } }] : []),
    ],
  },
})
