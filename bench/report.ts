/** The printed report: the run's header, the throughput table, the usage-writes table, CPU profiles. */

import { readdirSync, readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { OFF_THREAD_USAGE_ROWS } from '../src/store/sqlite/index.js'
import type { Figures, Running } from './measure.js'
import type { Options } from './options.js'
import { topSelfTime } from './profile.js'
import type { Scenario } from './scenarios.js'
import type { ServerStats } from './server.js'
import { fixed, table, thousands } from './stats.js'

/** keyward's default `usage.flushIntervalMs`, which the bench servers keep. */
export const FLUSH_INTERVAL_MS = 1000

export function header(options: Options, elapsedS: number): string {
  return [
    `keyward bench — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, node ${process.version}, ${cpus().length} CPUs, ${options.connections} connections,`,
    `${options.rounds} interleaved rounds × ${options.duration} s after ${options.warmup} s warm-up (${elapsedS.toFixed(0)} s in all); small store ${thousands(options.small)} keys, large ${thousands(options.large)}; beyond the cache ${thousands(options.missKeys)} keys, cache.max ${thousands(options.missCache)}.`,
    `versions: ${['hono', '@hono/node-server', 'express'].map((name) => `${name} ${installedVersion(name)}`).join(', ')}`,
    `command: npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    'Each round measures reference, A, reference, B, reference, ... (B and A swap every other round). req/s, p50, p99: medians over the rounds;',
    '× ref: median over the rounds of the ratio to the mean of the two reference runs just before and after (so a drift in machine load cancels).',
    'Compare scenarios by × ref, not by req/s: each req/s median comes from different moments of a machine whose load changes.',
    "CPU µs/req: the server process's CPU time (user + system) per request, a second view of cost (it too rises when the machine is busy).",
    "RSS MB: the server's resident set size after the warm-up → after its last run (growth between them is memory the run kept).",
  ].join('\n')
}

/** The version node_modules holds, as the servers load it. */
function installedVersion(name: string): string {
  const manifest = new URL(`../node_modules/${name}/package.json`, import.meta.url)
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version
}

/** What a `↳ vs` row compares with, when the id alone does not say it. */
function comparisonNote(scenario: Scenario, options: Options): string {
  if (scenario.id === 'hono-valid-large') return ` (${thousands(options.small)} keys)`
  if (scenario.compareTo === 'hono-bare-keys') return ' (bare Hono, the same key draws)'
  return ''
}

function megabytes(bytes: number | undefined): string {
  return bytes === undefined ? '?' : (bytes / 1024 / 1024).toFixed(0)
}

export function throughputTable(
  scenarios: readonly Scenario[],
  figures: Map<string, Figures>,
  pending: Map<string, string>,
  running: Map<string, Running>,
  options: Options,
): string {
  const columns = ['scenario', 'req/s', 'p50 ms', 'p99 ms', '× ref', 'min–max × ref', 'CPU µs/req', 'CPU × ref', 'RSS MB', 'ref']
  const note = (text: string, ...cells: string[]) => [text, ...cells, ...Array<string>(columns.length - 1 - cells.length).fill('')]
  const rows: string[][] = [columns]
  for (const scenario of scenarios) {
    const figure = figures.get(scenario.id)
    if (figure === undefined) {
      const reason = pending.get(scenario.id)
      if (reason !== undefined) rows.push(note(scenario.label, reason.startsWith('pending') ? 'pending' : 'not run'))
      continue
    }
    const finite = figure.ratios.filter(Number.isFinite)
    const spread = finite.length > 0 ? `${fixed(Math.min(...finite), 2)}–${fixed(Math.max(...finite), 2)}` : ''
    const rss = running.get(scenario.id)?.rss ?? []
    rows.push([
      scenario.label,
      thousands(figure.rps),
      fixed(figure.p50, 2),
      fixed(figure.p99, 2),
      scenario.reference ? fixed(figure.ratio, 2) : '1.00',
      spread,
      fixed(figure.cpuPerRequest, 1),
      scenario.reference ? fixed(figure.cpuRatio, 2) : '1.00',
      rss.length === 0 ? '' : `${megabytes(rss[0])}→${megabytes(rss.at(-1))}`,
      scenario.reference === undefined ? '(reference)' : scenario.reference,
    ])
    // Only when the other scenario ran too (--only may leave it out).
    if (scenario.compareTo !== undefined && figures.has(scenario.compareTo)) {
      rows.push([
        `  ↳ vs ${scenario.compareTo}${comparisonNote(scenario, options)}`,
        '',
        '',
        '',
        fixed(figure.comparison, 2),
        '',
        '',
        '',
        '',
        scenario.compareTo,
      ])
    }
    if (figure.answers !== undefined) rows.push(note(`  ↳ answers: ${figure.answers}`))
    if (figure.statusProblem !== undefined) rows.push(note(`  ↳ ${figure.statusProblem}`))
  }
  const notes = [...pending].map(([id, reason]) => `  ${id}: ${reason}`)
  return [table(rows), ...(notes.length > 0 ? ['', 'Not measured:', ...notes] : [])].join('\n')
}

/** Every 2xx the client saw was counted, and at most the requests in flight at each run's end more. */
export function countedEverything(server: Running, stats: ServerStats, connections: number): boolean {
  return stats.usageRequests >= server.seen2xx && stats.usageRequests <= server.seen2xx + connections * server.runs
}

export function writesTable(order: Scenario[], writes: Map<string, ServerStats>, running: Map<string, Running>, options: Options): string {
  const rows: string[][] = [
    [
      'database writes (usage)',
      'client 2xx',
      'counted',
      'writes',
      'SQL stmts',
      'writes/1k req',
      'stmts/1k req',
      'min gap ms',
      'longest ms (rows)',
      'loop max ms',
      'stored = counted',
      'last_used_at',
    ],
  ]
  if (writes.size === 0) return 'database writes: no server with a store was measured.'
  for (const scenario of order) {
    const stats = writes.get(scenario.id)
    if (stats === undefined) continue
    const perThousand = (count: number | null) =>
      count === null ? 'n/a' : stats.usageRequests === 0 ? '0' : fixed((count / stats.usageRequests) * 1000, 3)
    const check = stats.check
    const server = running.get(scenario.id)
    rows.push([
      scenario.id,
      server === undefined ? '?' : thousands(server.seen2xx),
      `${thousands(stats.usageRequests)}${server !== undefined && !countedEverything(server, stats, options.connections) ? ' (!)' : ''}`,
      String(stats.usageWrites),
      stats.sqlUsageStatements === null
        ? 'n/a'
        : `${stats.sqlUsageStatements}${stats.offThreadWrites > 0 ? ` +${stats.offThreadWrites} off-thread` : ''}`,
      perThousand(stats.usageWrites),
      perThousand(stats.sqlUsageStatements),
      minimumGap(stats.writeTimesMs),
      stats.usageWrites === 0 ? '—' : `${fixed(stats.longestWrite.ms, 1)} (${thousands(stats.longestWrite.rows)})`,
      fixed(stats.eventLoopMaxMs, 1),
      check === undefined
        ? '?'
        : check.storedRequests === check.countedRequests
          ? `yes (${thousands(check.storedRequests)})`
          : `NO: ${check.storedRequests} ≠ ${check.countedRequests}`,
      check?.lastUsedAt === null || check === undefined
        ? stats.usageRequests === 0
          ? '—'
          : 'NOT WRITTEN'
        : check.lastUsedAt >= check.startedAt
          ? check.lastUsedAt.slice(11, 23)
          : `STALE ${check.lastUsedAt}`,
    ])
  }
  return [
    table(rows),
    `writes = bulk usage writes (one transaction each, every key buffered since the last flush); flush interval ${FLUSH_INTERVAL_MS} ms;`,
    "SQL stmts = write statements the driver sent for those writes (one each: the daily counts and each day's last use go in one statement);",
    `+n off-thread = SQLite writes of ${OFF_THREAD_USAGE_ROWS.toLocaleString('en-US')} keys or more, run by keyward's usage writer thread (one statement each, on its own connection, not counted here);`,
    'min gap = shortest time between two writes of one server; longest = the longest write (wall time) and its rows (one per key and day): on SQLite a',
    'write on the main thread is synchronous, so the event loop serves nothing for that long; off-thread writes and PostgreSQL ones wait while requests',
    "are served; loop max = the longest the server's event loop was held, from when it was ready (monitorEventLoopDelay; what an open-loop client would wait);",
    '"stored = counted": the requests the server counted, read back from the store after a final flush',
    "(servers presented every key of their store: the whole store's usage, and its latest last_used_at).",
    `client 2xx = valid-key answers the load generator saw; the server counts those plus any still in flight when a run stopped (at most ${options.connections} a run; (!) marks a count outside that).`,
  ].join('\n')
}

export function minimumGap(times: number[]): string {
  if (times.length < 2) return '—'
  let gap = Number.POSITIVE_INFINITY
  for (let i = 1; i < times.length; i++) gap = Math.min(gap, (times[i] as number) - (times[i - 1] as number))
  return String(gap)
}

export function printProfiles(profileDir: string): void {
  process.stdout.write(`\nCPU profiles in ${profileDir} (main thread, self time, idle excluded):\n`)
  for (const scenario of readdirSync(profileDir).sort()) {
    // The main thread's file is the one whose thread id is 0: CPU.<date>.<time>.<pid>.0.<seq>.cpuprofile
    const main = readdirSync(join(profileDir, scenario)).find((name) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(name))
    if (main === undefined) continue
    process.stdout.write(`\n${scenario} (${join(scenario, main)})\n${topSelfTime(join(profileDir, scenario, main), 14).join('\n')}\n`)
  }
}
