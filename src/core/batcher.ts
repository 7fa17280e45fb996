/**
 * Gathers concurrent calls into batches, with one batch out at a time: the calls made while a
 * batch is out wait for its answer and leave together in the next one.
 *
 * Why: on the hot path's slow branches (a cache miss reading the database, a limited key asking
 * Redis), a round trip's socket write and read cost more than the work the server does for it,
 * and on a busy server as much as the HTTP response itself. An idle caller loses nothing (a lone
 * call leaves at the end of the event-loop turn it was made in); a busy one makes one round trip
 * per batch instead of one per call, and the batches grow with the load.
 *
 * `run` answers a batch in order, one answer per item; if it rejects, every call of the batch
 * rejects with that error. It must settle in bounded time (a command or query timeout), since
 * the next batch waits for it.
 */
export class Batcher<Item, Answer> {
  readonly #run: (items: Item[]) => Promise<Answer[]>
  readonly #maxBatch: number
  readonly #queue: { items: Item[]; waiting: { resolve(answer: Answer): void; reject(error: unknown): void }[] }[] = []
  #sending = false
  #scheduled = false

  /** @param maxBatch at most this many items go in one `run` (a bound on one query or command). */
  constructor(run: (items: Item[]) => Promise<Answer[]>, maxBatch: number) {
    this.#run = run
    this.#maxBatch = maxBatch
  }

  add(item: Item): Promise<Answer> {
    return new Promise((resolve, reject) => {
      let batch = this.#queue.at(-1)
      if (batch === undefined || batch.items.length >= this.#maxBatch) {
        batch = { items: [], waiting: [] }
        this.#queue.push(batch)
      }
      batch.items.push(item)
      batch.waiting.push({ resolve, reject })
      this.#schedule()
    })
  }

  /** Sends the next batch at the end of this event-loop turn, unless one is out (its answer sends it). */
  #schedule(): void {
    if (this.#sending || this.#scheduled || this.#queue.length === 0) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      void this.#send()
    })
  }

  async #send(): Promise<void> {
    if (this.#sending) return
    const batch = this.#queue.shift()
    if (batch === undefined) return
    this.#sending = true
    try {
      const answers = await this.#run(batch.items)
      for (let index = 0; index < batch.waiting.length; index++) batch.waiting[index]?.resolve(answers[index] as Answer)
    } catch (error) {
      for (const waiting of batch.waiting) waiting.reject(error)
    } finally {
      this.#sending = false
      this.#schedule()
    }
  }
}
