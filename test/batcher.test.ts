import { describe, expect, it } from 'vitest'
import { Batcher } from '../src/core/batcher.js'

describe('Batcher', () => {
  it('sends the calls of one turn together, and those made while a batch is out in the next one', async () => {
    const batches: number[][] = []
    let release!: () => void
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const batcher = new Batcher<number, number>(
      async (items) => {
        batches.push(items)
        if (batches.length === 1) await gate
        return items.map((item) => item * 10)
      },
      { maxBatch: 100 },
    )
    const first = [1, 2, 3].map((item) => batcher.add(item))
    await new Promise(setImmediate)
    const second = [4, 5].map((item) => batcher.add(item))
    await new Promise(setImmediate)
    expect(batches).toEqual([[1, 2, 3]])
    release()
    expect(await Promise.all([...first, ...second])).toEqual([10, 20, 30, 40, 50])
    expect(batches).toEqual([
      [1, 2, 3],
      [4, 5],
    ])
  })

  it('rejects every call of a batch whose run fails, and goes on with the next', async () => {
    const batcher = new Batcher<number, number>(
      async (items) => {
        if (items.includes(0)) throw new Error('down')
        return items
      },
      { maxBatch: 100 },
    )
    const failed = await Promise.allSettled([batcher.add(0), batcher.add(1)])
    expect(failed.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected'])
    expect(await batcher.add(2)).toBe(2)
  })

  it('keeps at most maxBatch items in one run', async () => {
    const sizes: number[] = []
    const batcher = new Batcher<number, number>(
      async (items) => {
        sizes.push(items.length)
        return items
      },
      { maxBatch: 4 },
    )
    await Promise.all(Array.from({ length: 10 }, (_, item) => batcher.add(item)))
    expect(sizes).toEqual([4, 4, 2])
  })

  it('does not let a hung batch hold later calls back for longer than stallMs', async () => {
    const batcher = new Batcher<number, number>(
      async (items) => {
        if (items.includes(0)) return new Promise<number[]>(() => undefined) // never answers
        return items
      },
      { maxBatch: 100, stallMs: 50 },
    )
    const hung = batcher.add(0)
    await new Promise(setImmediate)
    const startedAt = performance.now()
    expect(await batcher.add(1)).toBe(1)
    const waited = performance.now() - startedAt
    expect(waited).toBeGreaterThanOrEqual(40)
    expect(await Promise.race([hung.then(() => 'answered'), new Promise((resolve) => setTimeout(resolve, 20, 'still waiting'))])).toBe(
      'still waiting',
    )
  })

  it('keeps up to maxOut batches out, and gathers the calls made meanwhile into the next', async () => {
    const batches: number[][] = []
    const gates: (() => void)[] = []
    const batcher = new Batcher<number, number>(
      async (items) => {
        batches.push(items)
        await new Promise<void>((resolve) => gates.push(resolve))
        return items
      },
      { maxBatch: 100, maxOut: 2 },
    )
    const calls: Promise<number>[] = []
    for (const turn of [[1], [2, 3], [4], [5]]) {
      calls.push(...turn.map((item) => batcher.add(item)))
      await new Promise(setImmediate)
    }
    // Two out; the calls of the two turns after them wait together.
    expect(batches).toEqual([[1], [2, 3]])
    gates[0]?.()
    await new Promise(setImmediate)
    await new Promise(setImmediate)
    expect(batches).toEqual([[1], [2, 3], [4, 5]])
    gates[1]?.()
    gates[2]?.()
    expect(await Promise.all(calls)).toEqual([1, 2, 3, 4, 5])
  })
})
