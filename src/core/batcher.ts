/**
 * Gathers concurrent calls into batches, with at most `maxOut` batches out at a time (one by
 * default): the calls made while that many are out wait and leave together in the next one.
 *
 * Why: on the hot path's slow branches (a cache miss reading the database, a limited key asking
 * Redis), a round trip's socket write and read cost more than the work the server does for it,
 * and on a busy server as much as the HTTP response itself. An idle caller loses nothing (a lone
 * call leaves at the end of the event-loop turn it was made in); a busy one makes one round trip
 * per batch instead of one per call, and the batches grow with the load. Two out at once (Redis)
 * keep the far side busy while this process reads one answer and sends the next batch; the
 * order of batches on one connection is kept by the connection.
 *
 * `run` answers a batch in order, one answer per item; if it rejects, every call of the batch
 * rejects with that error. A batch out for longer than `stallMs` (a hung connection) no longer
 * holds the next one back: later calls go out without it, as they would have without batching,
 * and its own calls wait for it as before.
 */
export interface BatcherOptions {
  /** At most this many items go in one `run` (a bound on one query or command). */
  maxBatch: number
  /**
   * Batches out at once.
   * @default 1
   */
  maxOut?: number
  /**
   * How long a batch out may hold the next one back.
   * @default 1000
   */
  stallMs?: number
}

export class Batcher<Item, Answer> {
  readonly #run: (items: Item[]) => Promise<Answer[]>
  readonly #maxBatch: number
  readonly #queue: { items: Item[]; waiting: { resolve(answer: Answer): void; reject(error: unknown): void }[] }[] = []
  readonly #stallMs: number
  readonly #maxOut: number
  /** Batches out now (more than `maxOut` only after a stall). */
  #out = 0
  /** When the latest batch went out (monotonic ms). */
  #sentAt = 0
  #scheduled = false
  #stallTimer: NodeJS.Timeout | undefined

  constructor(run: (items: Item[]) => Promise<Answer[]>, options: BatcherOptions) {
    this.#run = run
    this.#maxBatch = options.maxBatch
    this.#maxOut = options.maxOut ?? 1
    this.#stallMs = options.stallMs ?? 1000
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

  /**
   * Sends the next batch at the end of this event-loop turn, unless `maxOut` are out: an answer
   * sends the next, or, if the latest takes longer than `stallMs`, a timer does.
   */
  #schedule(): void {
    if (this.#scheduled || this.#queue.length === 0) return
    if (this.#out >= this.#maxOut) {
      const wait = this.#stallMs - (performance.now() - this.#sentAt)
      if (wait > 0) {
        this.#stallTimer ??= setTimeout(() => {
          this.#stallTimer = undefined
          this.#schedule()
        }, wait).unref()
        return
      }
    }
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      void this.#send()
    })
  }

  async #send(): Promise<void> {
    const batch = this.#queue.shift()
    if (batch === undefined) return
    this.#out++
    this.#sentAt = performance.now()
    try {
      const answers = await this.#run(batch.items)
      for (let index = 0; index < batch.waiting.length; index++) batch.waiting[index]?.resolve(answers[index] as Answer)
    } catch (error) {
      for (const waiting of batch.waiting) waiting.reject(error)
    } finally {
      this.#out--
      this.#schedule()
    }
  }
}
