import type { CacheSyncOptions } from '../options.js'
import type { Runtime } from '../runtime.js'
import type { KeyStore } from '../store.js'
import type { VerificationCache } from './cache.js'

const READ_BATCH = 1000
const PRUNE_EVERY_MS = 600_000
const KEEP_CHANGES_MS = 3_600_000

/**
 * Keeps the verification cache in step with changes other processes commit: reads the store's
 * change log every `syncIntervalMs` (and at once on a store notification) and evicts what changed.
 * If the log cannot be read for `maxStalenessMs`, `isFresh` turns false and every request reads the
 * store: a change is seen everywhere within that bound, and an outage fails closed.
 */
export class ChangeSync {
  readonly #runtime: Runtime
  readonly #cache: VerificationCache
  readonly #syncIntervalMs: number
  readonly #maxStalenessMs: number
  #changeSeq = 0
  /** Monotonic time the last successful read of the change log began. */
  #lastSyncOkAt = Number.NEGATIVE_INFINITY
  #lastPruneAt = Number.NEGATIVE_INFINITY
  #syncing: Promise<void> | undefined
  #syncAgain: Promise<void> | undefined
  #unsubscribe: (() => Promise<void>) | undefined

  constructor(runtime: Runtime, cache: VerificationCache, options: Required<CacheSyncOptions>) {
    this.#runtime = runtime
    this.#cache = cache
    this.#syncIntervalMs = options.syncIntervalMs
    this.#maxStalenessMs = options.maxStalenessMs
  }

  /** Whether cached entries may be trusted at this monotonic instant. */
  isFresh(monotonicMs: number): boolean {
    return monotonicMs - this.#lastSyncOkAt <= this.#maxStalenessMs
  }

  /** Starts from the end of the log and returns the poll timer. */
  async start(store: KeyStore): Promise<NodeJS.Timeout[]> {
    this.#changeSeq = await store.latestChangeSeq()
    this.#lastSyncOkAt = this.#runtime.options.clock.monotonic()
    this.#lastPruneAt = this.#lastSyncOkAt
    const timer = setInterval(() => void this.sync(), this.#syncIntervalMs).unref()
    if (store.subscribeChanges !== undefined) this.#unsubscribe = await store.subscribeChanges(() => void this.sync())
    return [timer]
  }

  /** Reads the change log once and evicts what changed. Never rejects: failures go to `onError`. */
  sync(): Promise<void> {
    const store = this.#runtime.store
    if (store === undefined || this.#runtime.closed) return Promise.resolve()
    if (this.#syncing !== undefined) {
      // The running sync may have read the change log before the change that asks for this one
      // committed: run once more after it, instead of leaving that change to the next poll.
      this.#syncAgain ??= this.#syncing.then(() => {
        this.#syncAgain = undefined
        return this.sync()
      })
      return this.#syncAgain
    }
    this.#syncing = this.#readLog(store).finally(() => {
      this.#syncing = undefined
    })
    return this.#syncing
  }

  async #readLog(store: KeyStore): Promise<void> {
    const clock = this.#runtime.options.clock
    try {
      const startedAt = clock.monotonic()
      for (;;) {
        const batch = await store.readChanges(this.#changeSeq, READ_BATCH)
        if (batch.keyHashes.length > 0) this.#cache.invalidate(batch.keyHashes)
        this.#changeSeq = batch.seq
        if (batch.keyHashes.length < READ_BATCH) break
      }
      // After a gap longer than the bound, change-log entries may have been pruned: start over.
      if (startedAt - this.#lastSyncOkAt > this.#maxStalenessMs) this.#cache.clear()
      this.#lastSyncOkAt = startedAt
      if (startedAt - this.#lastPruneAt > PRUNE_EVERY_MS) {
        this.#lastPruneAt = startedAt
        await store.pruneChanges(new Date(clock.now() - KEEP_CHANGES_MS))
      }
    } catch (error) {
      this.#runtime.options.onError(error, 'cache sync')
    }
  }

  /** Waits for a running read and stops listening for notifications. */
  async stop(): Promise<void> {
    await this.#syncing
    await this.#unsubscribe?.()
  }
}
