/**
 * Request bodies that an answer does not need: a 401, 403, 413 or 415 given before the body was read.
 *
 * On a keep-alive connection the unread bytes still sit in front of the client's next request, so
 * they must be read off the wire or the connection given up. Left to the server, neither happens
 * well: Node's http server reads whatever is left after the answer, without bound (an
 * unauthenticated client can make it read gigabytes), and @hono/node-server destroys the socket
 * after 500 ms, or at once when the body's stream had been opened and then left alone (it stops
 * flowing), under the next request the client already sent on it (issue 12, defect 5).
 *
 * So an early answer first reads and drops up to a bound (64 KiB), which keeps the connection; a
 * body declared larger, or still going at the bound, is left unread and the answer says
 * `Connection: close`, so the client sends its next request on a new connection instead. Go's
 * net/http does the same with 256 KiB. Both adapters apply this one rule, each to its own stream
 * type: `readBody` below for WHATWG requests (Hono, and the Express bridge to the keys router),
 * `drainRequest` in `express/node-http.ts` for Node's `IncomingMessage`.
 */

/**
 * How much of an unread body an early answer reads and drops to keep the connection; the keys
 * router uses four times its `maxBodyBytes` (also 64 KiB by default).
 */
export const DRAIN_LIMIT_BYTES = 64 * 1024

/** The keys router reads a body up to this many times `maxBodyBytes` before answering 413 on a kept connection. */
export const DRAIN_LIMIT_FACTOR = 4

/**
 * The body is declared (by `Content-Length`, without `Transfer-Encoding`) larger than `limitBytes`:
 * reading it only to keep the connection would cost more than a new connection.
 */
export function declaredLargerThan(
  contentLength: string | null | undefined,
  transferEncoding: string | null | undefined,
  limitBytes: number,
): boolean {
  // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; a chunked body's length is unknown.
  if (transferEncoding || !contentLength) return false
  const length = Number(contentLength)
  return !(Number.isSafeInteger(length) && length >= 0 && length <= limitBytes)
}

export interface BodyRead {
  /** The whole body, when it ended within `keepBytes`; null when it was larger, or already read by someone else. */
  bytes: Uint8Array | null
  /** The body ended within `limitBytes`: nothing of it is left on the connection, which stays usable. */
  ended: boolean
}

/**
 * Reads a WHATWG request's body, keeping it when it fits in `keepBytes` and reading on (dropping the
 * bytes) up to `limitBytes` in all when it does not. `readBody(request, 0, limit)` just drains.
 *
 * It never cancels the stream: under @hono/node-server and the Express bridge that destroys the
 * socket before the answer is written. A body declared larger than `limitBytes` is not read at all.
 */
export async function readBody(request: Request, keepBytes: number, limitBytes: number): Promise<BodyRead> {
  // Whoever started reading a body reads it to the end (as Node's server assumes too).
  if (request.bodyUsed) return { bytes: null, ended: true }
  if (request.method === 'GET' || request.method === 'HEAD') return { bytes: new Uint8Array(0), ended: true }
  const headers = request.headers
  if (declaredLargerThan(headers.get('content-length'), headers.get('transfer-encoding'), limitBytes)) return { bytes: null, ended: false }
  // Not the headers: an HTTP/2 request may carry a body without Content-Length.
  const body = request.body
  if (body === null) return { bytes: new Uint8Array(0), ended: true }
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined
  const kept: Uint8Array[] = []
  let size = 0
  try {
    // Throws when another reader holds the stream; then its state is unknown, so the answer closes.
    reader = body.getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return { bytes: size <= keepBytes ? concat(kept, size) : null, ended: true }
      size += value.byteLength
      if (size > limitBytes) return { bytes: null, ended: false }
      if (size <= keepBytes) kept.push(value)
    }
  } catch {
    // The client went away mid-body (or the stream was not ours to read): the connection is not reusable.
    return { bytes: null, ended: false }
  } finally {
    reader?.releaseLock()
  }
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array
  const bytes = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return bytes
}
