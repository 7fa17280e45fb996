import { randomUUID } from 'node:crypto'

/**
 * What an incoming `X-Request-Id` may be to be kept: 1-128 characters that are safe in a log line
 * and a header (UUIDs, ULIDs, `Root=1-…` trace ids). Anything else is replaced, never echoed.
 */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/

/** The request's id: the caller's `X-Request-Id` when it is safe, else a fresh UUID. */
export function requestIdOf(incoming: string | null | undefined): string {
  return typeof incoming === 'string' && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID()
}
