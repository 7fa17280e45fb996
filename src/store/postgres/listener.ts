import pg from 'pg'

/** The NOTIFY channel every change-log insert signals on. */
export const CHANGES_CHANNEL = 'keyward_changes'

/** The dedicated LISTEN connection of one subscriber, reconnecting with capped, jittered backoff. */
export class ChangeListener {
  #client: pg.Client | undefined
  #retryTimer: NodeJS.Timeout | undefined
  #failures = 0
  #stopped = false

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly onChange: () => void,
    private readonly onStop: () => void,
  ) {}

  /** Resolves after the first attempt, connected or not (a failure schedules a retry). */
  start(): Promise<void> {
    return this.#connect()
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return
    // The connection only ever receives: TCP keepalive is what notices a peer that vanished.
    const client = new pg.Client({
      ...this.config,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: 'keyward-listener',
    })
    this.#client = client
    client.on('error', () => this.#lost(client))
    client.on('end', () => this.#lost(client))
    client.on('notification', (message) => {
      if (message.channel === CHANGES_CHANNEL) this.onChange()
    })
    try {
      await client.connect()
      await client.query(`listen ${CHANGES_CHANNEL}`)
    } catch {
      this.#lost(client)
      return
    }
    if (this.#client !== client) return
    this.#failures = 0
    // Changes committed while nothing listened (before the first LISTEN, or during an outage)
    // are picked up by one sync now.
    this.onChange()
  }

  #lost(client: pg.Client): void {
    if (this.#client !== client) return
    this.#client = undefined
    client.end().catch(() => undefined)
    if (this.#stopped) return
    const delayMs = Math.min(5000, 100 * 2 ** this.#failures) * (0.5 + Math.random() / 2)
    this.#failures++
    this.#retryTimer = setTimeout(() => void this.#connect(), delayMs).unref()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    this.onStop()
    clearTimeout(this.#retryTimer)
    const client = this.#client
    this.#client = undefined
    await client?.end().catch(() => undefined)
  }
}
