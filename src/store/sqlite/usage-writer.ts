import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

/**
 * The usage flush's one statement: the whole flush as one JSON parameter (no parameter limit to
 * chunk against), upserting the daily counts (`count = count + n`) with each day's latest use. A
 * bucket of refusals only has no last use (0 → null), and never moves `last_used_at`. Run the same
 * way on the main thread and by the usage writer.
 */
export const USAGE_UPSERT = `insert into api_key_usage (key_id, day, request_count, rate_limited_count, credits_refused_count, last_used_at)
  select value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, nullif(value ->> 5, 0)
  from json_each(?) where true
  on conflict (key_id, day) do update set
    request_count = request_count + excluded.request_count,
    rate_limited_count = rate_limited_count + excluded.rate_limited_count,
    credits_refused_count = credits_refused_count + excluded.credits_refused_count,
    last_used_at = nullif(max(coalesce(last_used_at, 0), coalesce(excluded.last_used_at, 0)), 0)`

/**
 * The writer thread: its own connection to the same file (WAL: as another process would be), one
 * prepared statement, one `BEGIN IMMEDIATE` transaction per message. Plain CommonJS evaluated by
 * the worker, so it runs the same from `dist/` and from the TypeScript sources under test.
 */
const WRITER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
let write
let opening
try {
  const db = new Database(workerData.path, { fileMustExist: true, timeout: workerData.busyTimeoutMs })
  db.pragma('synchronous = NORMAL')
  const upsert = db.prepare(workerData.sql)
  write = db.transaction((rows) => { upsert.run(rows) })
} catch (error) {
  opening = error
}
const failure = (error) => ({ message: String((error && error.message) || error), code: error && typeof error.code === 'string' ? error.code : undefined })
parentPort.on('message', ({ id, rows }) => {
  if (write === undefined) return parentPort.postMessage({ id, error: failure(opening) })
  try {
    write.immediate(rows)
    parentPort.postMessage({ id })
  } catch (error) {
    parentPort.postMessage({ id, error: failure(error) })
  }
})
`

/** What the writer thread reports for a failed write: the driver's message and SQLite code. */
export interface WriterFailure {
  message: string
  code?: string
}

interface Waiting {
  resolve: () => void
  reject: (error: unknown) => void
}

/**
 * Writes large usage flushes of an SQLite file on a worker thread. better-sqlite3 is synchronous,
 * and a flush upserts one row per key used since the last one: a flush of 10,000 distinct keys
 * took 120–380 ms on a two-vCPU machine, during which the main thread served nothing. The worker
 * takes that pause off the event loop; small flushes (a few busy keys) stay on the main thread,
 * where they cost under a millisecond and no thread is started.
 *
 * Started on the first large flush; idle, it holds no reference that keeps the process alive, and
 * while a write is out it does, so a closing app waits for it. A failed write rejects with the
 * error `toError` makes of the driver's (so the store's unavailability mapping applies) and the
 * usage buffer keeps those counts for its next flush. A dead thread fails its writes and the
 * next write starts a new one.
 */
export class UsageWriter {
  #worker: Worker | undefined
  readonly #waiting = new Map<number, Waiting>()
  #sequence = 0

  constructor(
    private readonly path: string,
    private readonly busyTimeoutMs: number,
    private readonly toError: (failure: WriterFailure) => unknown,
  ) {}

  /** Runs `USAGE_UPSERT` with `rows` (the flush's JSON) in one transaction on the writer thread. */
  write(rows: string): Promise<void> {
    const worker = this.#worker ?? this.#start()
    const id = ++this.#sequence
    return new Promise<void>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject })
      worker.ref()
      worker.postMessage({ id, rows })
    })
  }

  /** Stops the thread; writes still out fail (their counts stay with the usage buffer). */
  async close(): Promise<void> {
    const worker = this.#worker
    this.#worker = undefined
    if (worker !== undefined) await worker.terminate()
    this.#failAll(new Error('keyward: the SQLite usage writer was closed'))
  }

  #start(): Worker {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3')
    const worker = new Worker(WRITER_SOURCE, {
      eval: true,
      workerData: { driver, path: this.path, sql: USAGE_UPSERT, busyTimeoutMs: this.busyTimeoutMs },
    })
    worker.unref()
    worker.on('message', (message: { id: number; error?: WriterFailure }) => {
      const waiting = this.#waiting.get(message.id)
      this.#waiting.delete(message.id)
      if (this.#waiting.size === 0) worker.unref()
      if (message.error === undefined) waiting?.resolve()
      else waiting?.reject(this.toError(message.error))
    })
    const died = (error: unknown) => {
      if (this.#worker !== worker) return
      this.#worker = undefined
      this.#failAll(error)
    }
    worker.on('error', died)
    worker.on('exit', (code) => died(new Error(`keyward: the SQLite usage writer stopped (exit code ${code})`)))
    this.#worker = worker
    return worker
  }

  #failAll(error: unknown): void {
    for (const waiting of this.#waiting.values()) waiting.reject(error)
    this.#waiting.clear()
  }
}
