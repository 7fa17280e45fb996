/**
 * Measurement: the load generator (autocannon) and the interleaved rounds. Every scenario runs
 * right between two runs of its reference (bare Hono, bare Express) and is divided by their mean,
 * so a change in machine load between runs cancels to first order; the order of the others
 * reverses every other round, so no scenario always follows the same one.
 */
import type { ChildProcess } from 'node:child_process'
import autocannon from 'autocannon'
import { askStats } from './children.js'
import { log } from './log.js'
import type { Presentation, Scenario } from './scenarios.js'
import { LatencyRecorder, median, percentile, thousands } from './stats.js'

/** A started server, as the load generator sees it. */
export interface Running {
  scenario: Scenario
  child: ChildProcess
  port: number
  presentation: Presentation
  /** 2xx answers the load generator saw from this server, and in how many runs (warm-up included). */
  seen2xx: number
  runs: number
  /** The server's resident set size after each run (warm-up included), bytes. */
  rss: number[]
}

/** One run: one scenario driven for `--duration` seconds. */
export interface RunFigures {
  rps: number
  /** Server CPU time (user + system) per request, µs. */
  cpuPerRequest: number
  p50: number
  p99: number
  requests: number
  statuses: Record<string, number>
  errors: number
}

/** What one scenario got: its runs, and per round its ratios to the reference runs around it. */
export interface Measured {
  runs: RunFigures[]
  /** Indexed by round (NaN where a round had no figure). */
  ratios: number[]
  cpuRatios: number[]
  cpuByRound: number[]
}

export interface Figures {
  runs: RunFigures[]
  rps: number
  p50: number
  p99: number
  /** Median of per-round ratios to the reference runs around each run. */
  ratio: number
  /** Per round (NaN where a round had no figure). */
  ratios: number[]
  /** Median server CPU µs per request, and its median per-round ratio to the reference's. */
  cpuPerRequest: number
  cpuRatio: number
  cpuByRound: number[]
  /** Median of per-round ratios to `compareTo`. */
  comparison: number
  /** For scenarios that expect several statuses: the share of each, e.g. "80.1 % 200, 19.9 % 401". */
  answers?: string
  statusProblem?: string
}

export interface LoadSettings {
  connections: number
}

let currentLoad: autocannon.Instance | undefined

/** Ends the run in progress (Ctrl-C). */
export function stopLoad(): void {
  currentLoad?.stop()
}

/** Drives one server for `seconds`, with its CPU time and RSS read before and after. */
export async function load(running: Running, seconds: number, settings: LoadSettings): Promise<RunFigures> {
  const before = await askStats(running.child, 'stats')
  const figures = await drive(running, seconds, settings)
  running.runs++
  for (const [code, count] of Object.entries(figures.statuses)) if (code.startsWith('2')) running.seen2xx += count
  const after = await askStats(running.child, 'stats')
  figures.cpuPerRequest = (after.cpuUs - before.cpuUs) / Math.max(1, figures.requests)
  running.rss.push(after.rssBytes)
  return figures
}

function drive(running: Running, seconds: number, settings: LoadSettings): Promise<RunFigures> {
  const latencies = new LatencyRecorder()
  const presentation = running.presentation
  const draw = presentation.kind === 'drawn' ? requestDrawer(presentation) : undefined
  let drawn = 0
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: `http://127.0.0.1:${running.port}/v1/ping`,
        connections: settings.connections,
        duration: seconds,
        headers: presentation.kind === 'fixed' ? { 'x-api-key': presentation.key } : {},
        ...(draw !== undefined && {
          // One key per request. autocannon's documented way, `requests` with `setupRequest`,
          // rebuilds every request through its generic builder, several µs each: in a trial on a
          // busy machine bare Hono driven that way served about two thirds of its requests per
          // second. A prebuilt request per key, picked at random, costs a Math.random or two
          // (hono-bare-keys shows what is left).
          setupClient: (client: autocannon.Client) => {
            const target = client as unknown as { getRequestBuffer?: () => Buffer }
            if (typeof target.getRequestBuffer !== 'function')
              throw new Error('bench: autocannon has no Client#getRequestBuffer any more; a key per request needs another way')
            target.getRequestBuffer = () => {
              drawn++
              return draw()
            }
          },
        }),
      },
      (error, result) => {
        currentLoad = undefined
        if (error) return reject(error)
        // Proof the drawn requests were the ones sent: autocannon may not bypass the hook.
        if (draw !== undefined && drawn < result.requests.total)
          return reject(new Error(`bench: ${result.requests.total} requests but only ${drawn} keys drawn`))
        const sorted = latencies.sorted()
        const statuses: Record<string, number> = {}
        for (const [code, entry] of Object.entries(result.statusCodeStats ?? {})) statuses[code] = entry.count ?? 0
        resolve({
          rps: result.requests.total / result.duration,
          cpuPerRequest: Number.NaN,
          p50: percentile(sorted, 50),
          p99: percentile(sorted, 99),
          requests: result.requests.total,
          statuses,
          errors: result.errors,
        })
      },
    )
    currentLoad = instance
    // Exact latencies (autocannon's own histogram keeps whole milliseconds only).
    instance.on('response', (_client, _status, _bytes, responseTime) => latencies.add(responseTime))
  })
}

/** Raw requests per key pool, built once and shared by every server that draws from that pool. */
const builtPools = new WeakMap<readonly string[], Buffer[]>()

/** The request autocannon would send (the Host header carries no port: the pool serves every server). */
function rawRequest(key: string | undefined): Buffer {
  const header = key === undefined ? '' : `x-api-key: ${key}\r\n`
  return Buffer.from(`GET /v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n${header}\r\n`, 'latin1')
}

function requestDrawer(presentation: Extract<Presentation, { kind: 'drawn' }>): () => Buffer {
  let pool = builtPools.get(presentation.pool)
  if (pool === undefined) {
    pool = presentation.pool.map((key) => rawRequest(key))
    builtPools.set(presentation.pool, pool)
  }
  const requests = pool
  const size = requests.length
  if (presentation.share >= 1) return () => requests[(Math.random() * size) | 0] as Buffer
  const otherwise = rawRequest(presentation.otherwise)
  const share = presentation.share
  return () => (Math.random() < share ? (requests[(Math.random() * size) | 0] as Buffer) : otherwise)
}

export interface RoundSettings extends LoadSettings {
  rounds: number
  duration: number
  /** Checked before each round: Ctrl-C ends the rounds early. */
  interrupted: () => boolean
}

/** The rounds: reference, A, reference, B, reference, ... for each reference, B and A swapped every other round. */
export async function measureRounds(
  order: Scenario[],
  running: Map<string, Running>,
  settings: RoundSettings,
): Promise<Map<string, Measured>> {
  const measured = new Map<string, Measured>(
    order.map((scenario) => [scenario.id, { runs: [], ratios: [], cpuRatios: [], cpuByRound: [] }]),
  )
  const references = order.filter((scenario) => scenario.reference === undefined)
  for (let round = 0; round < settings.rounds && !settings.interrupted(); round++) {
    const line: string[] = []
    for (const reference of references) {
      const members = order.filter((scenario) => scenario.reference === reference.id)
      const sequence = round % 2 === 0 ? members : [...members].reverse()
      const run = async (scenario: Scenario) => {
        const figures = await load(running.get(scenario.id) as Running, settings.duration, settings)
        measured.get(scenario.id)?.runs.push(figures)
        line.push(`${scenario.id} ${thousands(figures.rps)}`)
        return figures
      }
      let before = await run(reference)
      for (const scenario of sequence) {
        const own = await run(scenario)
        const after = await run(reference)
        const entry = measured.get(scenario.id) as Measured
        entry.ratios[round] = own.rps / ((before.rps + after.rps) / 2)
        entry.cpuRatios[round] = own.cpuPerRequest / ((before.cpuPerRequest + after.cpuPerRequest) / 2)
        entry.cpuByRound[round] = own.cpuPerRequest
        before = after
      }
    }
    log(`round ${round + 1}/${settings.rounds}: ${line.join(', ')}`)
  }
  return measured
}

/** Median over the rounds of a's ratio divided by b's: both bracketed by the same reference runs. */
export function versus(a: Figures, b: Figures): number {
  return median(a.ratios.map((ratio, round) => ratio / (b.ratios[round] ?? Number.NaN)).filter(Number.isFinite))
}

/** Median over the rounds of a's CPU µs per request minus b's, in the same round. */
export function cpuDifference(a: Figures, b: Figures): number {
  return median(a.cpuByRound.map((cpu, round) => cpu - (b.cpuByRound[round] ?? Number.NaN)).filter(Number.isFinite))
}

export function summarize(order: Scenario[], measured: Map<string, Measured>): Map<string, Figures> {
  const figures = new Map<string, Figures>()
  for (const scenario of order) {
    const own = measured.get(scenario.id) as Measured
    const compared = scenario.compareTo === undefined ? undefined : measured.get(scenario.compareTo)
    // Both bracketed by the same reference in the same round: their quotient compares them directly.
    const comparison =
      compared === undefined ? [] : own.ratios.map((ratio, round) => ratio / (compared.ratios[round] ?? Number.NaN)).filter(Number.isFinite)
    const totals = new Map<string, number>()
    for (const run of own.runs) for (const [code, count] of Object.entries(run.statuses)) totals.set(code, (totals.get(code) ?? 0) + count)
    const unexpected = [...totals].filter(([code]) => !scenario.expectedStatuses.includes(Number(code)))
    const errors = own.runs.reduce((sum, run) => sum + run.errors, 0)
    const answered = [...totals.values()].reduce((sum, count) => sum + count, 0)
    figures.set(scenario.id, {
      runs: own.runs,
      rps: median(own.runs.map((run) => run.rps)),
      p50: median(own.runs.map((run) => run.p50)),
      p99: median(own.runs.map((run) => run.p99)),
      ratio: median(own.ratios.filter(Number.isFinite)),
      ratios: own.ratios,
      cpuPerRequest: median(own.runs.map((run) => run.cpuPerRequest)),
      cpuRatio: median(own.cpuRatios.filter(Number.isFinite)),
      cpuByRound: own.cpuByRound,
      comparison: median(comparison),
      answers:
        scenario.expectedStatuses.length > 1 && answered > 0
          ? [...totals]
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([code, count]) => `${((count / answered) * 100).toFixed(1)} % ${code}`)
              .join(', ')
          : undefined,
      statusProblem:
        unexpected.length > 0 || errors > 0
          ? `unexpected: ${unexpected.map(([code, count]) => `${count}× ${code}`).join(', ')}${errors > 0 ? ` ${errors} connection errors` : ''}`
          : undefined,
    })
  }
  return figures
}
