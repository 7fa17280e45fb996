import { describe, expect, it } from 'vitest'
import { declaredLargerThan, readBody } from '../src/http/body.js'

/** A POST whose body streams `chunks`, recording how many were pulled and whether it was cancelled. */
function streamedRequest(chunks: Uint8Array[], headers: Record<string, string> = {}) {
  const seen = { pulled: 0, cancelled: false }
  let next = 0
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      seen.pulled++
      const chunk = chunks[next++]
      if (chunk === undefined) controller.close()
      else controller.enqueue(chunk)
    },
    cancel() {
      seen.cancelled = true
    },
  })
  const request = new Request('http://localhost/', { method: 'POST', body, headers, duplex: 'half' } as RequestInit)
  return { request, seen }
}

const bytes = (size: number) => new Uint8Array(size).fill(120)

describe('readBody', () => {
  it('returns the whole body when it fits', async () => {
    const { request } = streamedRequest([bytes(10), bytes(5)])
    const read = await readBody(request, 16, 64)
    expect(read.ended).toBe(true)
    expect(read.bytes?.byteLength).toBe(15)
  })

  it('reads and drops a body over the size kept but within the limit, and reports that it ended', async () => {
    const { request } = streamedRequest([bytes(10), bytes(10), bytes(10)])
    expect(await readBody(request, 16, 64)).toEqual({ bytes: null, ended: true })
  })

  it('stops at the limit without cancelling the stream, which would reset the socket under the answer', async () => {
    const { request, seen } = streamedRequest([bytes(40), bytes(40), bytes(40), bytes(40)])
    expect(await readBody(request, 16, 64)).toEqual({ bytes: null, ended: false })
    expect(seen.cancelled).toBe(false)
    expect(seen.pulled).toBeLessThan(4)
  })

  it('does not read a body declared larger than the limit', async () => {
    const { request } = streamedRequest([bytes(100)], { 'content-length': '100' })
    expect(await readBody(request, 16, 64)).toEqual({ bytes: null, ended: false })
    expect(request.bodyUsed).toBe(false)
  })

  it('reports a stream another reader holds as not ended, so the answer closes the connection', async () => {
    const { request } = streamedRequest([bytes(10)])
    request.body?.getReader()
    expect(await readBody(request, 16, 64)).toEqual({ bytes: null, ended: false })
  })

  it('reads nothing of a GET and of a body someone else already read', async () => {
    expect(await readBody(new Request('http://localhost/'), 16, 64)).toEqual({ bytes: new Uint8Array(0), ended: true })
    const { request } = streamedRequest([bytes(10)])
    await request.arrayBuffer()
    expect(await readBody(request, 16, 64)).toEqual({ bytes: null, ended: true })
  })
})

describe('declaredLargerThan', () => {
  it('trusts Content-Length only without Transfer-Encoding, and treats a malformed length as too large', () => {
    expect(declaredLargerThan('65536', null, 65_536)).toBe(false)
    expect(declaredLargerThan('65537', null, 65_536)).toBe(true)
    expect(declaredLargerThan('2097152', 'chunked', 65_536)).toBe(false)
    expect(declaredLargerThan(null, null, 65_536)).toBe(false)
    expect(declaredLargerThan('ten', null, 65_536)).toBe(true)
    expect(declaredLargerThan('-1', null, 65_536)).toBe(true)
  })
})
