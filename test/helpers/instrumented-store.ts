import type { KeyStore } from '../../src/core/store.js'

export type InstrumentedStore = KeyStore & {
  /** How many times each method was called. */
  calls: Record<string, number>
  /** Runs before a method's real work; a test can make it wait or throw to force an interleaving. */
  before: Partial<Record<keyof KeyStore, () => Promise<void> | void>>
  /** Runs after the real work, before the caller sees the result. */
  after: Partial<Record<keyof KeyStore, () => Promise<void> | void>>
}

/** Wraps a real store, counting calls and letting a test pause or fail chosen methods. */
export function instrument(store: KeyStore): InstrumentedStore {
  const calls: Record<string, number> = {}
  const before: InstrumentedStore['before'] = {}
  const after: InstrumentedStore['after'] = {}
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'calls') return calls
      if (property === 'before') return before
      if (property === 'after') return after
      const value = Reflect.get(target, property, receiver)
      if (typeof value !== 'function' || typeof property !== 'string') return value
      return async (...args: unknown[]) => {
        calls[property] = (calls[property] ?? 0) + 1
        await before[property as keyof KeyStore]?.()
        const result = await value.apply(target, args)
        await after[property as keyof KeyStore]?.()
        return result
      }
    },
  }) as InstrumentedStore
}
