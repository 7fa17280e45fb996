/** The bench's command line: `npm run bench -- [options]`. */
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

export const HELP = `Usage: npm run bench -- [options]

  --quick              2 short rounds (about 1 minute) instead of the full run
  --rounds <n>         measured rounds per scenario              (default 10; quick 2)
  --duration <s>       seconds per run, whole                    (default 1)
  --warmup <s>         warm-up seconds per server before round 1 (default 2; quick 1)
  --connections <n>    concurrent connections                    (default 10)
  --large <n>          keys in the large store                   (default 1000000)
  --small <n>          keys in the small store                   (default 1000)
  --miss-keys <n>      active keys in the beyond-the-cache stores, presented at random (default 200000)
  --miss-cache <n>     cache.max of the beyond-the-cache servers (default 100000)
  --only <ids>         run only these scenarios (comma-separated; references and comparisons are added)
  --skip <ids>         leave these scenarios out
  --pg-url <url>       PostgreSQL server for the bench databases (default $KEYWARD_BENCH_PG_URL
                       or postgres://postgres@127.0.0.1:5432/test; fresh databases are created and dropped)
  --redis-url <url>    Redis for the *-redis scenarios (default $KEYWARD_BENCH_REDIS_URL or redis://127.0.0.1:6379)
  --cache-dir <dir>    where the seeded large SQLite stores and the key set are kept between runs
                       (default <tmpdir>/keyward-bench-cache)
  --pin                pin the servers to CPU 1 and the load generator to CPU 0 (Linux taskset)
  --cpu-prof           write a V8 CPU profile per server (node --cpu-prof) and print the hottest functions
  --cpu-prof-dir <dir> where the profiles go                     (default <tmpdir>/keyward-bench-profiles/<time>)
  --json <file>        also write the raw per-round figures as JSON
  --micro              run the in-process micro-benchmark instead: verifyFast on a cache hit
                       against the minimal check (SHA-256 and one Map lookup); no servers
  --calls <n>          --micro: calls per run                    (default 1000000; quick 200000)
  --help               this text

Scenarios:`

export interface Options {
  quick: boolean
  rounds: number
  duration: number
  warmup: number
  connections: number
  large: number
  small: number
  missKeys: number
  missCache: number
  calls: number
  only: string[] | undefined
  skip: string[]
  pgUrl: string
  /** Redis for the issue 14 scenarios that count in Redis. */
  redisUrl: string
  cacheDir: string
  pin: boolean
  cpuProf: boolean
  cpuProfDir: string | undefined
  json: string | undefined
  micro: boolean
  help: boolean
}

function wholeNumber(value: string | undefined, fallback: number, name: string, min = 1, max = 100_000_000): number {
  if (value === undefined) return fallback
  const parsed = Number(value)
  if (!Number.isInteger(parsed) || parsed < min || parsed > max)
    throw new Error(`bench: --${name} must be a whole number from ${min} to ${max}`)
  return parsed
}

function idList(value: string | undefined): string[] | undefined {
  return value
    ?.split(',')
    .map((id) => id.trim())
    .filter(Boolean)
}

export function parseOptions(args: string[] = process.argv.slice(2)): Options {
  const { values: flags } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string', default: '10' },
      large: { type: 'string', default: '1000000' },
      small: { type: 'string', default: '1000' },
      'miss-keys': { type: 'string', default: '200000' },
      'miss-cache': { type: 'string', default: '100000' },
      calls: { type: 'string' },
      only: { type: 'string' },
      skip: { type: 'string' },
      'pg-url': { type: 'string', default: process.env.KEYWARD_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
      'redis-url': { type: 'string', default: process.env.KEYWARD_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' },
      'cache-dir': { type: 'string', default: join(tmpdir(), 'keyward-bench-cache') },
      pin: { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      'cpu-prof-dir': { type: 'string' },
      json: { type: 'string' },
      micro: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    allowPositionals: false,
  })
  return {
    quick: flags.quick,
    rounds: wholeNumber(flags.rounds, flags.quick ? 2 : 10, 'rounds', 1, 50),
    duration: wholeNumber(flags.duration, 1, 'duration', 1, 120),
    warmup: wholeNumber(flags.warmup, flags.quick ? 1 : 2, 'warmup', 0, 120),
    connections: wholeNumber(flags.connections, 10, 'connections', 1, 1000),
    large: wholeNumber(flags.large, 1_000_000, 'large', 1, 20_000_000),
    small: wholeNumber(flags.small, 1000, 'small', 1, 20_000_000),
    missKeys: wholeNumber(flags['miss-keys'], 200_000, 'miss-keys', 1, 5_000_000),
    missCache: wholeNumber(flags['miss-cache'], 100_000, 'miss-cache', 1, 5_000_000),
    calls: wholeNumber(flags.calls, flags.quick ? 200_000 : 1_000_000, 'calls', 10_000, 100_000_000),
    only: idList(flags.only),
    skip: idList(flags.skip) ?? [],
    pgUrl: flags['pg-url'],
    redisUrl: flags['redis-url'],
    cacheDir: flags['cache-dir'],
    pin: flags.pin,
    cpuProf: flags['cpu-prof'],
    cpuProfDir: flags['cpu-prof-dir'],
    json: flags.json,
    micro: flags.micro,
    help: flags.help,
  }
}
