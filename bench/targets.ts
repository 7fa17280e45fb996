/**
 * The targets the report checks (issues 4, 5 and 17) and the informational lines under them.
 * Nothing here fails a build: a MISS is a finding to read next to the figures.
 */
import { cpuDifference, type Figures, type Running, versus } from './measure.js'
import type { Options } from './options.js'
import { countedEverything, FLUSH_INTERVAL_MS } from './report.js'
import type { ServerStats } from './server.js'
import { fixed } from './stats.js'

interface Target {
  /** The scenario whose absence explains a missing figure ("PEND" with its reason). */
  scenario: string
  text: string
  /** The verdict and the figure it rests on, or undefined when not measured. */
  evaluate: (figures: Map<string, Figures>) => { ok: boolean; shown: string } | undefined
}

const finite = (value: number | undefined): value is number => value !== undefined && Number.isFinite(value)

/** The scenario's median ratio to its reference. */
function ratioAtLeast(scenario: string, bound: number, text: string): Target {
  return {
    scenario,
    text,
    evaluate: (f) => {
      const ratio = f.get(scenario)?.ratio
      return finite(ratio) ? { ok: ratio >= bound, shown: `${fixed(ratio, 3)}×` } : undefined
    },
  }
}

/** The scenario's median ratio to its `compareTo` (both bracketed by the same reference runs). */
function comparisonAtLeast(scenario: string, bound: number, text: string): Target {
  return {
    scenario,
    text,
    evaluate: (f) => {
      const ratio = f.get(scenario)?.comparison
      return finite(ratio) ? { ok: ratio >= bound, shown: `${fixed(ratio, 3)}×` } : undefined
    },
  }
}

function p99AtMost(scenario: string, boundMs: number, text: string): Target {
  return {
    scenario,
    text,
    evaluate: (f) => {
      const p99 = f.get(scenario)?.p99
      return finite(p99) ? { ok: p99 <= boundMs, shown: `p99 ${fixed(p99, 2)} ms` } : undefined
    },
  }
}

const ISSUE_17: Target[] = [
  comparisonAtLeast('hono-valid', 0.95, 'Hono valid key ≥ 0.95× empty middleware'),
  {
    scenario: 'hono-valid',
    text: 'Hono valid key CPU within 1.5 µs of empty',
    evaluate: (f) => {
      const valid = f.get('hono-valid')
      const empty = f.get('hono-empty')
      if (valid === undefined || empty === undefined) return undefined
      const difference = cpuDifference(valid, empty)
      if (!finite(difference)) return undefined
      return {
        ok: difference <= 1.5,
        shown: `${difference >= 0 ? '+' : ''}${fixed(difference, 2)} µs/req (median of same-round differences)`,
      }
    },
  },
  comparisonAtLeast('express-valid', 0.95, 'Express valid key ≥ 0.95× empty middleware'),
  comparisonAtLeast('hono-bad-checksum', 0.95, 'bad checksum ≥ 0.95× empty middleware'),
  {
    scenario: 'hono-valid-large',
    text: 'large store within 10 % of the small one',
    evaluate: (f) => {
      const ratio = f.get('hono-valid-large')?.comparison
      return finite(ratio) ? { ok: Math.abs(ratio - 1) <= 0.1, shown: `${fixed(ratio, 3)}× the small store` } : undefined
    },
  },
  ratioAtLeast('hono-miss-sqlite', 0.5, 'SQLite beyond the cache ≥ 0.50× bare Hono'),
  ratioAtLeast('hono-unknown-mix', 0.5, 'SQLite 20 % unknown keys ≥ 0.50× bare Hono'),
  ratioAtLeast('hono-miss-postgres', 0.25, 'PostgreSQL beyond the cache ≥ 0.25× bare Hono'),
  p99AtMost('hono-miss-postgres', 10, 'PostgreSQL beyond the cache p99 ≤ 10 ms'),
  ratioAtLeast('hono-unknown-mix-postgres', 0.25, 'PostgreSQL 20 % unknown keys ≥ 0.25× bare Hono'),
  p99AtMost('hono-unknown-mix-postgres', 10, 'PostgreSQL 20 % unknown keys p99 ≤ 10 ms'),
]

const ISSUE_14: Target[] = [
  comparisonAtLeast('hono-limit-local', 0.9, 'one rate limit, in process ≥ 0.90× no limits'),
  comparisonAtLeast('hono-credits-local', 0.9, 'credits, in process ≥ 0.90× no limits'),
  comparisonAtLeast('hono-limit-redis', 0.5, 'one rate limit, Redis ≥ 0.50× no limits'),
  comparisonAtLeast('hono-credits-redis', 0.5, 'credits, Redis ≥ 0.50× no limits'),
]

const ISSUES_4_5: Target[] = [
  ratioAtLeast('hono-valid', 0.7, 'valid key ≥ 0.70× bare Hono'),
  p99AtMost('hono-valid', 2, 'valid key p99 ≤ 2 ms'),
  ratioAtLeast('hono-bad-checksum', 0.75, 'bad checksum ≥ 0.75× bare Hono'),
  ratioAtLeast('express-valid', 0.8, 'Express valid key ≥ 0.80× bare Express'),
]

const WIDTH = 48
const verdict = (ok: boolean | undefined) => (ok === undefined ? 'n/a ' : ok ? 'PASS' : 'MISS')

function targetLines(targets: Target[], figures: Map<string, Figures>, pending: Map<string, string>): string[] {
  return targets.map((target) => {
    const result = target.evaluate(figures)
    const reason = pending.get(target.scenario)
    const mark = result === undefined && reason !== undefined ? 'PEND' : verdict(result?.ok)
    return `  ${mark}  ${target.text.padEnd(WIDTH)} ${result?.shown ?? reason ?? ''}`
  })
}

/** ≤ 1 write per key per flush interval (so 0 per request), one statement each, counts exact. */
function writeLines(writes: Map<string, ServerStats>, running: Map<string, Running>, options: Options): string[] {
  const written = [...writes.entries()].filter(([, stats]) => stats.usageWrites > 0)
  if (written.length === 0) return []
  const lines: string[] = []
  // Every write carries at most one row per key and day, and no two writes of a server come
  // closer than (almost) one interval.
  const gaps = written.flatMap(([, stats]) => stats.writeTimesMs.slice(1).map((time, i) => time - (stats.writeTimesMs[i] as number)))
  const minGap = gaps.length > 0 ? Math.min(...gaps) : Number.POSITIVE_INFINITY
  const duplicates = written.reduce((sum, [, stats]) => sum + stats.usageDuplicateRows, 0)
  const perThousand = Math.max(...written.map(([, stats]) => (stats.usageWrites / stats.usageRequests) * 1000))
  lines.push(
    `  ${verdict(minGap >= FLUSH_INTERVAL_MS * 0.9 && duplicates === 0)}  ${'≤ 1 write per key per flush interval'.padEnd(WIDTH)} ${fixed(perThousand, 3)} writes/1k requests at most, min gap ${Number.isFinite(minGap) ? minGap : '—'} ms, ${duplicates} rows repeating a key within a write`,
  )
  const statementsPerWrite = Math.max(
    // Writes on keyward's SQLite writer thread run one statement each on the thread's own connection, out of this count's sight.
    ...written
      .filter(([, stats]) => stats.usageWrites > stats.offThreadWrites)
      .map(([, stats]) =>
        stats.sqlUsageStatements === null ? Number.NaN : stats.sqlUsageStatements / (stats.usageWrites - stats.offThreadWrites),
      ),
  )
  lines.push(
    `  ${verdict(Number.isNaN(statementsPerWrite) ? undefined : statementsPerWrite === 1)}  ${'one SQL statement per usage write'.padEnd(WIDTH)} ${fixed(statementsPerWrite, 2)} statements per write at most (on the thread that counts them)`,
  )
  const exact = [...writes.entries()].every(([id, stats]) => {
    const server = running.get(id)
    const stored = stats.check !== undefined && stats.check.storedRequests === stats.check.countedRequests
    const lastUsed = stats.usageRequests === 0 || (stats.check?.lastUsedAt ?? '') >= (stats.check?.startedAt ?? '~')
    return stored && lastUsed && server !== undefined && countedEverything(server, stats, options.connections)
  })
  lines.push(
    `  ${verdict(exact)}  ${'usage counts and last_used_at written'.padEnd(WIDTH)} ${writes.size} servers checked after a final flush`,
  )
  return lines
}

function infoLines(figures: Map<string, Figures>, running: Map<string, Running>): string[] {
  const lines: string[] = []
  const info = (text: string, shown: string) => lines.push(`  info  ${text.padEnd(WIDTH)} ${shown}`)
  const get = (id: string) => figures.get(id)
  const bare = get('hono-bare')
  const empty = get('hono-empty')
  const header = get('hono-header')
  const anchor = get('hono-floor')
  const valid = get('hono-valid')
  if (empty !== undefined) info('floor: empty middleware / bare Hono', `${fixed(empty.ratio, 2)}×`)
  const expressFloor = get('express-empty')
  if (expressFloor !== undefined) info('floor: empty middleware / bare Express', `${fixed(expressFloor.ratio, 2)}×`)
  if (header !== undefined) info('floor: header-reading middleware / bare Hono', `${fixed(header.ratio, 2)}×`)
  if (anchor !== undefined) info('floor: minimal key check / bare Hono', `${fixed(anchor.ratio, 2)}× (issue 4 measured about 0.75×)`)
  if (valid !== undefined && header !== undefined)
    info('apiKeyAuth valid / header-reading middleware', `${fixed(versus(valid, header), 2)}× (what keyward adds to reading a header)`)
  if (valid !== undefined && anchor !== undefined) info('apiKeyAuth valid / minimal key check', `${fixed(versus(valid, anchor), 2)}×`)
  if (valid !== undefined && empty !== undefined)
    info('CPU µs/req: valid key vs empty middleware', `${fixed(valid.cpuPerRequest, 1)} vs ${fixed(empty.cpuPerRequest, 1)} (medians)`)
  if (bare !== undefined && valid !== undefined)
    info(
      'p99: valid key vs bare Hono',
      `${fixed(valid.p99, 2)} ms vs ${fixed(bare.p99, 2)} ms (the bare app's p99 bounds what any middleware can show)`,
    )
  const pg = get('hono-postgres')
  if (pg !== undefined) info('PostgreSQL valid key / bare Hono', `${fixed(pg.ratio, 2)}× (p99 ${fixed(pg.p99, 2)} ms)`)
  const draws = get('hono-bare-keys')
  if (draws !== undefined)
    info('load generator: a key per request / fixed key', `${fixed(draws.ratio, 2)}× on bare Hono (1.00: drawing keys costs it nothing)`)
  for (const id of ['hono-miss-sqlite', 'hono-miss-postgres', 'hono-unknown-mix', 'hono-unknown-mix-postgres']) {
    const figure = get(id)
    if (figure !== undefined) info(`p99: ${id}`, `${fixed(figure.p99, 2)} ms (p50 ${fixed(figure.p50, 2)} ms)`)
  }
  // Memory a server kept over the rounds: a cache or buffer without a bound shows here first.
  const growth = [...running.entries()]
    .filter(([, server]) => server.rss.length > 1)
    .map(([id, server]) => ({ id, grew: ((server.rss.at(-1) as number) - (server.rss[0] as number)) / 1024 / 1024 }))
    .sort((a, b) => b.grew - a.grew)[0]
  if (growth !== undefined)
    info('largest RSS growth after the warm-up', `${growth.id}: ${growth.grew >= 0 ? '+' : ''}${fixed(growth.grew, 1)} MB`)
  return lines
}

export function targetsReport(
  figures: Map<string, Figures>,
  writes: Map<string, ServerStats>,
  pending: Map<string, string>,
  running: Map<string, Running>,
  options: Options,
): string {
  return [
    'Targets (issue 17):',
    ...targetLines(ISSUE_17, figures, pending),
    ...writeLines(writes, running, options),
    'Targets (issue 14):',
    ...targetLines(ISSUE_14, figures, pending),
    'Targets (issues 4, 5):',
    ...targetLines(ISSUES_4_5, figures, pending),
    ...infoLines(figures, running),
  ].join('\n')
}
