import { ControlEnforcer } from './controls/enforcer.js'
import { createLimiter } from './controls/limiter.js'
import { fail, type Result } from './errors.js'
import { errorMessage, type ResolvedOptions } from './options.js'
import { type KeyStore, StoreUnavailableError } from './store.js'
import { UsageBuffer } from './usage/buffer.js'
import { VerificationCache } from './verification/cache.js'
import { ChangeSync } from './verification/sync.js'

/**
 * What every capability of one keyward instance shares: the resolved options, the store (opened
 * lazily, retried after a failed start), the cache with its change-log sync, the usage buffer, and
 * the background timers. The capabilities (verification, management, lifecycle, usage) hold one
 * of these; the `Keyward` facade builds it and closes it.
 */
export class Runtime {
  readonly options: ResolvedOptions
  readonly cache: VerificationCache | undefined
  readonly sync: ChangeSync | undefined
  usage: UsageBuffer | undefined
  /** Rate limits, credits and IP allowlists of keys that have them. */
  readonly controls: ControlEnforcer
  /** The open store once `ready()` has resolved; the hot path reads it without awaiting. */
  store: KeyStore | undefined
  readonly #storePromise: Promise<KeyStore>
  #ready: Promise<KeyStore> | undefined
  #timers: NodeJS.Timeout[] = []
  #closed = false

  constructor(options: ResolvedOptions, store: KeyStore | Promise<KeyStore>) {
    this.options = options
    this.cache = options.cache === undefined ? undefined : new VerificationCache(options.cache)
    this.sync = this.cache === undefined || options.cache === undefined ? undefined : new ChangeSync(this, this.cache, options.cache)
    this.controls = new ControlEnforcer({
      limiter: createLimiter({ ...options.limiter, onError: options.onError }),
      store: () => this.store,
      usage: () => this.usage,
      evict: (keyHash) => this.evict(keyHash),
      onError: options.onError,
    })
    this.#storePromise = Promise.resolve(store)
    // A store that fails to open is reported when first used, not as an unhandled rejection.
    this.#storePromise.catch(() => undefined)
  }

  get closed(): boolean {
    return this.#closed
  }

  /** The business clock's reading as a `Date`. */
  now(): Date {
    return new Date(this.options.clock.now())
  }

  /** Resolves once the store is open, the cache is synced and the background loops run. */
  ready(): Promise<KeyStore> {
    this.#ready ??= this.#start()
    return this.#ready
  }

  async #start(): Promise<KeyStore> {
    if (this.#closed) throw new Error('keyward: this instance is closed')
    const store = await this.#storePromise
    if (this.sync !== undefined) this.#timers.push(...(await this.sync.start(store)))
    // A wrong Redis URL shows up at start, not at the first limited request; keyward still starts
    // (limited keys then get the documented fallback until Redis answers).
    await this.controls.limiter.ready().catch((error) => this.options.onError(error, 'rate limiter'))
    const flushIntervalMs = this.options.flushIntervalMs
    if (flushIntervalMs !== undefined) this.usage = new UsageBuffer(store)
    // Credits are given back (or settled) on the same beat, even when usage is not recorded.
    this.#timers.push(setInterval(() => void this.flushUsage().catch(() => undefined), flushIntervalMs ?? 1000).unref())
    this.store = store
    return store
  }

  /** The store, opening it on first use; an unreachable one is a `StoreUnavailableError`. */
  async openStore(): Promise<KeyStore> {
    if (this.store !== undefined) return this.store
    try {
      return await this.ready()
    } catch (error) {
      // A failed start is retried by the next call (the database may come back).
      this.#ready = undefined
      throw new StoreUnavailableError(`keyward: the store could not be opened: ${errorMessage(error)}`, { cause: error })
    }
  }

  /** Runs management work against the store; an unreachable store becomes `store_unavailable`. */
  async guard<T>(work: (store: KeyStore) => Promise<Result<T>>): Promise<Result<T>> {
    try {
      return await work(await this.openStore())
    } catch (error) {
      if (error instanceof StoreUnavailableError) {
        this.options.onError(error, 'store')
        return fail('store_unavailable')
      }
      throw error
    }
  }

  /** Every security-relevant change evicts at once in this process (pollinations/pollinations#9219). */
  evict(keyHash: string): void {
    this.cache?.invalidate([keyHash])
  }

  /** Writes buffered usage, and gives back (or settles) the credits this process counted. */
  async flushUsage(): Promise<void> {
    try {
      await this.usage?.flush()
      await this.controls.flush(this.options.clock.now())
    } catch (error) {
      this.options.onError(error, 'usage flush')
      throw error
    }
  }

  /** Stops the timers, writes buffered usage and closes the store. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const timer of this.#timers) clearInterval(timer)
    this.#timers = []
    if (this.#ready === undefined) return this.controls.limiter.close()
    const store = await this.#ready.catch(() => undefined)
    if (store === undefined) return this.controls.limiter.close()
    await this.sync?.stop()
    await this.usage?.flush().catch((error) => this.options.onError(error, 'usage flush on close'))
    await this.controls.flush(this.options.clock.now()).catch((error) => this.options.onError(error, 'credits on close'))
    await this.controls.limiter.close()
    await store.close()
  }
}
