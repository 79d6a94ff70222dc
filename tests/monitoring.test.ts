import { execFile } from 'node:child_process'
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { createMetrics } from '@fitstream/shared'
import { createFetcherMetrics } from '../services/fetcher/src/metrics.js'
import { createPublisherMetrics } from '../services/publisher/src/metrics.js'
import { createTokenServiceMetrics } from '../services/token-service/src/metrics.js'
import type { UserRepository } from '../services/token-service/src/users.js'

/**
 * The monitoring profile: Prometheus finds every service (replicas included) on the port it serves
 * metrics on, and the provisioned Grafana dashboard is well formed and only charts metrics the
 * services really export.
 */
const root = new URL('../', import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), 'utf8')
const dashboard = JSON.parse(read('deploy/grafana/dashboards/fitstream.json')) as {
  uid: string
  title: string
  schemaVersion: number
  panels: {
    id: number
    type: string
    title: string
    gridPos: { h: number; w: number; x: number; y: number }
    datasource: { uid: string }
    targets: { refId: string; expr: string; datasource: { uid: string } }[]
  }[]
}
const datasources = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: { uid: string; url: string }[] }
const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, { environment?: Record<string, string>; profiles?: string[]; volumes?: string[] }>
}

const hasDockerCompose = await promisify(execFile)('docker-compose', ['version']).then(
  () => true,
  () => false,
)

/** Prometheus' promtool: PROMTOOL, or promtool on the PATH. */
const promtool = await promisify(execFile)(process.env.PROMTOOL ?? 'promtool', ['--version']).then(
  () => process.env.PROMTOOL ?? 'promtool',
  () => undefined,
)

/** Every metric name a FitStream service registers (histograms also as _bucket/_sum/_count). */
async function exportedMetricNames(): Promise<Set<string>> {
  const metrics = createMetrics('test')
  createFetcherMetrics(metrics)
  createTokenServiceMetrics(metrics, {} as UserRepository)
  createPublisherMetrics(metrics)
  const names = new Set<string>()
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    names.add(metric.name)
    if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${metric.name}${suffix}`)
  }
  return names
}

describe('Grafana dashboard', () => {
  it('is a well-formed dashboard on the provisioned Prometheus datasource', () => {
    expect(dashboard).toMatchObject({ uid: 'fitstream-pipeline', title: 'FitStream pipeline' })
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36)
    const uid = datasources.datasources[0]!.uid
    expect(datasources.datasources[0]!.url).toBe('http://prometheus:9090')
    const ids = dashboard.panels.map((p) => p.id)
    expect(new Set(ids).size).toBe(ids.length)
    for (const panel of dashboard.panels) {
      expect(['timeseries', 'stat', 'table', 'bargauge']).toContain(panel.type)
      expect(panel.datasource.uid).toBe(uid)
      expect(panel.gridPos.w).toBeGreaterThan(0)
      expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24)
      expect(panel.targets.length).toBeGreaterThan(0)
      for (const target of panel.targets) expect(target.datasource.uid).toBe(uid)
    }
  })

  it('charts only metrics the services export', async () => {
    const exported = await exportedMetricNames()
    const referenced = dashboard.panels.flatMap((p) => p.targets.flatMap((t) => t.expr.match(/fitstream_[a-z_]+/g) ?? []))
    expect(referenced.length).toBeGreaterThan(10)
    expect(referenced.filter((name) => !exported.has(name))).toEqual([])
  })

  it('covers what an operator looks at first: throughput, failures, dead letters, backlog, Google, memory', () => {
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n')
    for (const metric of [
      'fitstream_jobs_completed_total',
      'fitstream_jobs_failed_total',
      'fitstream_jobs_dead_lettered_total',
      'fitstream_queue_jobs',
      'fitstream_queue_oldest_waiting_seconds',
      'fitstream_job_duration_seconds_bucket',
      'fitstream_google_requests_total',
      'fitstream_process_resident_memory_bytes',
      'fitstream_token_refreshes_total',
      'fitstream_users',
      'fitstream_streamr_publish_duration_seconds_bucket',
    ]) {
      expect(exprs).toContain(metric)
    }
  })
})

describe('Prometheus', () => {
  it('scrapes every service on the port compose gives its metrics (the internal listener where it has one), finding every replica by DNS', () => {
    const config = parse(read('deploy/prometheus/prometheus.yml')) as {
      scrape_configs: { job_name: string; dns_sd_configs: { names: string[]; port: number }[] }[]
    }
    const jobs = Object.fromEntries(config.scrape_configs.map((c) => [c.job_name, c.dns_sd_configs[0]!]))
    for (const service of ['token-service', 'fetcher', 'anonymizer', 'publisher']) {
      const env = compose.services[service]!.environment!
      expect(jobs[service]).toEqual(expect.objectContaining({ names: [service], port: Number(env.INTERNAL_HTTP_PORT ?? env.HTTP_PORT) }))
    }
  })

  it('loads the alert rules compose mounts, and they watch only metrics the services export', async () => {
    const config = parse(read('deploy/prometheus/prometheus.yml')) as { rule_files: string[] }
    expect(config.rule_files).toEqual(['/etc/prometheus/alerts.yml'])
    expect(compose.services.prometheus!.volumes).toContain('./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro')
    const rules = parse(read('deploy/prometheus/alerts.yml')) as { groups: { rules: { alert: string; expr: string }[] }[] }
    const alerts = rules.groups.flatMap((g) => g.rules)
    expect(alerts.map((r) => r.alert)).toEqual(expect.arrayContaining(['FitStreamDeadLetters', 'FitStreamUsersMustMove', 'FitStreamGoogleRateLimitUsedUp']))
    const exported = await exportedMetricNames()
    const referenced = alerts.flatMap((r) => r.expr.match(/fitstream_[a-z_]+/g) ?? [])
    expect(referenced.filter((name) => !exported.has(name))).toEqual([])
  })

  // promtool comes with Prometheus (.ci/run takes it from Debian's package); in CI it must be there.
  it.runIf(promtool !== undefined || process.env.FITSTREAM_REQUIRE_PROMTOOL === '1')(
    'has alert rules Prometheus accepts, each firing on what it is about and only then (promtool test rules)',
    async () => {
      expect(promtool, 'promtool not found: set PROMTOOL or put it on the PATH').toBeDefined()
      const cwd = new URL('deploy/prometheus/', root).pathname
      const run = promisify(execFile)
      expect((await run(promtool!, ['check', 'rules', 'alerts.yml'], { cwd })).stdout).toContain('SUCCESS: 7 rules found')
      expect((await run(promtool!, ['test', 'rules', 'alerts.test.yml'], { cwd })).stdout).toContain('SUCCESS')
    },
  )

  it('and Grafana run only in the monitoring profile', () => {
    expect(compose.services.prometheus!.profiles).toEqual(['monitoring'])
    expect(compose.services.grafana!.profiles).toEqual(['monitoring'])
    expect(compose.services.grafana!.volumes).toContain('./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro')
  })

  it.runIf(hasDockerCompose)('makes a valid compose configuration with the monitoring profile on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fitstream-monitoring-'))
    copyFileSync(new URL('docker-compose.yml', root), join(dir, 'docker-compose.yml'))
    cpSync(new URL('deploy', root), join(dir, 'deploy'), { recursive: true })
    const env = read('.env.example').replace(
      /^([A-Z_]+)=$/gm,
      (_, key: string) => `${key}=${key === 'STREAMR_PRIVATE_KEY' ? `0x${'11'.repeat(32)}` : 'x'.repeat(48)}`,
    )
    writeFileSync(join(dir, '.env'), env)
    const { stdout } = await promisify(execFile)('docker-compose', ['--profile', 'monitoring', 'config', '--services'], { cwd: dir })
    rmSync(dir, { recursive: true })
    expect(stdout.trim().split('\n').sort()).toEqual(['anonymizer', 'fetcher', 'grafana', 'membership', 'prometheus', 'publisher', 'redis', 'token-service'])
  })
})
