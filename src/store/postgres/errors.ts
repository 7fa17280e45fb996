import { StoreUnavailableError } from '../../core/store.js'

/**
 * What node-postgres and drizzle throw, sorted: an unreachable database becomes
 * `StoreUnavailableError` (503 `store_unavailable`, fail closed); anything else is a bug and is
 * rethrown as it is.
 */

// 08: connection exception; 57P01-57P04: admin/crash shutdown, cannot connect now, database
// dropped; 53300: too many connections.
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[1-4]|53300)$/
const UNAVAILABLE_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
])
const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|timeout expired|not queryable|Cannot use a pool after calling end/i

/** The driver error and what it wraps (drizzle's DrizzleQueryError, Node's AggregateError). */
function* causes(error: unknown): Generator<unknown> {
  const queue = [error]
  for (let seen = 0; queue.length > 0 && seen < 10; seen++) {
    const current = queue.shift()
    yield current
    if (current instanceof AggregateError) queue.push(...current.errors)
    if (current instanceof Error && current.cause !== undefined) queue.push(current.cause)
  }
}

export function sqlState(error: unknown): string | undefined {
  for (const cause of causes(error)) {
    const code = (cause as { code?: unknown } | null)?.code
    if (typeof code === 'string') return code
  }
  return undefined
}

export function isUnavailable(error: unknown): boolean {
  for (const cause of causes(error)) {
    const code = (cause as { code?: unknown } | null)?.code
    if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_NODE_CODES.has(code))) return true
    if (cause instanceof Error && UNAVAILABLE_MESSAGES.test(cause.message)) return true
  }
  return false
}

/** The innermost message: a DrizzleQueryError's own message carries the query and its parameters. */
function rootMessage(error: unknown): string {
  let message = String(error)
  for (const cause of causes(error)) if (cause instanceof Error && cause.message !== '') message = cause.message
  return message
}

export async function guard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    if (isUnavailable(error)) throw new StoreUnavailableError(`PostgreSQL store unavailable: ${rootMessage(error)}`, { cause: error })
    throw error
  }
}

/** Overlapping writers (usage flushes of several instances) may deadlock; the loser retries. */
export async function retryOnDeadlock<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work()
    } catch (error) {
      const state = sqlState(error)
      if (attempt >= 3 || (state !== '40P01' && state !== '40001')) throw error
    }
  }
}
