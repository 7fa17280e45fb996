import type { Redis, RedisOptions } from 'ioredis'
import { Batcher } from '../batcher.js'
import { bucketMsFor, CREDITS_UNSEEDED, type CreditCharge, type LimitResult, type LimitState, type LimitSubject } from './rate-limit.js'

/**
 * Rate limits and credits exact across instances: one Lua script call per request, or per batch of
 * concurrent requests (see `consume`), one round trip.
 *
 * The script does what `LocalRateLimiter.consume` does, atomically inside Redis: read every
 * limit's buckets (one hash per subject and limit, fields = absolute bucket numbers, plus `t`, the
 * latest clock admitted), read the credit counter, and only if every limit has room and the
 * credits cover the cost, spend all of them. A refused request writes nothing but the seeding of
 * the credit counter and the removal of buckets that left the window.
 *
 * Credits live in `<prefix>credits:<keyId>:<epoch>`, created on first use (`SET NX`) with the
 * `seed` the caller passes (what the database says is left). keyward names the key by its lineage
 * and a successor keeps its predecessor's epoch, so a rotation continues the counter. The epoch
 * (`creditEpoch`) changes with each PATCH of credits and each refill period, so resetting credits
 * never means finding and deleting a counter: the next request names a fresh one, seeded anew,
 * and the old one expires. Counters expire `creditsTtlMs` after their last use; the host must persist
 * `peekCredits` to the database more often than that (its usage flush does), or a key idle for
 * longer is reseeded from an older value. If Redis loses its data (a restart without
 * persistence), counters are reseeded from the database: spending since the last flush is
 * forgotten.
 *
 * The clock is the caller's `nowMs`, clamped per limit to the latest reading admitted, so
 * instances with skewed clocks cannot push a window backwards (the ceiling holds; a skewed
 * instance only sees the window end a little early or late).
 *
 * One Redis node (or a primary with replicas), not Redis Cluster: a request's keys (its key's
 * and its tenant's) do not share a hash slot.
 *
 * Over 400 lines on purpose: the Lua script and the TypeScript that seeds, calls and reads it are
 * one protocol (argument order, status numbers), and stay side by side so they change together.
 */

/** Redis could not answer (down, unreachable, too slow): the caller decides to fall back or refuse. */
export class LimiterUnavailableError extends Error {
  override readonly name = 'LimiterUnavailableError'
}

/**
 * An ioredis client: keyward opens its own connection from it (`duplicate`) with its own timeouts.
 * Typed structurally so that hosts without ioredis never need its types.
 */
export interface RedisClientLike {
  duplicate(...args: never[]): unknown
}

export interface RedisLimiterOptions {
  /** A `redis://` URL, or an ioredis client to copy the connection settings from. */
  redis: string | RedisClientLike
  /**
   * Prefix of every key keyward writes.
   * @default 'keyward:'
   */
  keyPrefix?: string
  /**
   * How long one command may take before the request falls back (or fails closed).
   * @default 500
   */
  commandTimeoutMs?: number
  /**
   * How long a connection attempt may take; requests before the first connection wait this long.
   * @default 2000
   */
  connectTimeoutMs?: number
  /**
   * How long a credit counter lives after its last use.
   * @default 7 days
   */
  creditsTtlMs?: number
}

// One call admits or refuses a batch of requests, in order, each exactly as if it were alone
// (the whole batch is one atomic step, which only strengthens that). ARGV[1] is the number of
// requests; then per request: limit count, credits mode ('0' none, '1' spend), now, cost, credit
// seed, credit TTL, then per limit: limit, window ms, bucket ms. KEYS per request: one hash per
// limit, then (credits mode '1') the credit counter.
// A negative credit seed asks the script not to seed: a missing counter answers status 3 at once.
// Returns per request: its length, status (0 admitted, 1 rate limited, 2 credits exhausted,
// 3 credit counter missing), the refused limit's number, credits left (-1 without credits), then
// per limit: remaining, reset ms, retry ms.
const CONSUME_SCRIPT = `
-- What the batch has read and changed, per Redis key: a key several requests of the batch share
-- (a busy key's limits and credits) is read once and written once, at the end. Each request still
-- sees exactly what it would have read had the requests before it written theirs.
local windows, windowOrder = {}, {}
local counters, counterOrder = {}, {}

local function window(key)
  local state = windows[key]
  if state then return state end
  state = { held = {}, touched = {}, admitted = false }
  local fields = redis.call('HGETALL', key)
  for j = 1, #fields, 2 do
    if fields[j] == 't' then
      state.latest = tonumber(fields[j + 1])
    else
      state.held[tonumber(fields[j])] = tonumber(fields[j + 1])
    end
  end
  windows[key] = state
  windowOrder[#windowOrder + 1] = key
  return state
end

-- The credit counter, or nil when it does not exist (and no seed, < 0, to start it from).
local function counter(key, seed, ttl)
  local state = counters[key]
  if state then return state end
  local held = redis.call('GET', key)
  if not held then
    if tonumber(seed) < 0 then return nil end
    redis.call('SET', key, seed, 'PX', ttl)
    held = seed
  end
  state = { value = tonumber(held), changed = false }
  counters[key] = state
  counterOrder[#counterOrder + 1] = key
  return state
end

local function consume(k, a)
  local limits = tonumber(ARGV[a])
  local creditMode = ARGV[a + 1]
  local now = tonumber(ARGV[a + 2])
  local cost = tonumber(ARGV[a + 3])
  local ttl = ARGV[a + 5]
  local states, clocks, firsts, currents, used = {}, {}, {}, {}, {}
  local caps, spans, buckets = {}, {}, {}
  local refused = 0
  for i = 1, limits do
    local base = a + 6 + (i - 1) * 3
    local limit = tonumber(ARGV[base])
    local span = tonumber(ARGV[base + 1])
    local bucket = tonumber(ARGV[base + 2])
    caps[i], spans[i], buckets[i] = limit, span, bucket
    local state = window(KEYS[k + i - 1])
    local clock = now
    if state.latest and state.latest > clock then clock = state.latest end
    local first = math.floor((clock - span) / bucket)
    local sum = 0
    for index, count in pairs(state.held) do
      if index < first then
        state.held[index] = nil
        state.touched[index] = true
      else
        sum = sum + count
      end
    end
    states[i] = state
    clocks[i] = clock
    firsts[i] = first
    currents[i] = math.floor(clock / bucket)
    used[i] = sum
    if refused == 0 and sum + cost > limit then refused = i end
  end
  local credits = -1
  local credit = nil
  if creditMode == '1' then
    -- No seed given (seed < 0): a missing counter is reported (status 3), so the caller can read
    -- what the database says is left, fresh, and ask again with it as the seed.
    credit = counter(KEYS[k + limits], ARGV[a + 4], ttl)
    if not credit then return {3, 0, -1} end
    credits = credit.value
  end
  local status = 0
  if credits >= 0 and credits < cost then
    status = 2
  elseif refused > 0 then
    status = 1
  end
  if status == 0 then
    for i = 1, limits do
      local state = states[i]
      state.held[currents[i]] = (state.held[currents[i]] or 0) + cost
      state.touched[currents[i]] = true
      state.latest = clocks[i]
      state.admitted = true
      state.ttl = spans[i] + buckets[i]
      used[i] = used[i] + cost
    end
    if credit then
      credit.value = credit.value - cost
      credit.changed = true
      credit.ttl = ttl
      credits = credit.value
    end
  end
  local out = {status, refused, credits}
  for i = 1, limits do
    local limit, span, bucket = caps[i], spans[i], buckets[i]
    local clock = clocks[i]
    local held = states[i].held
    local reset = span
    for index = firsts[i], currents[i] do
      if (held[index] or 0) > 0 then
        reset = (index + 1) * bucket + span - clock
        break
      end
    end
    local retry = -1
    if i == refused then
      retry = span
      local left = used[i]
      for index = firsts[i], currents[i] do
        left = left - (held[index] or 0)
        if left + cost <= limit then
          retry = (index + 1) * bucket + span - clock
          break
        end
      end
    end
    out[#out + 1] = math.max(0, limit - used[i])
    out[#out + 1] = reset
    out[#out + 1] = retry
  end
  return out
end

local all = {}
local k, a = 1, 2
for r = 1, tonumber(ARGV[1]) do
  local limits = tonumber(ARGV[a])
  local out = consume(k, a)
  all[#all + 1] = #out
  for i = 1, #out do all[#all + 1] = out[i] end
  k = k + limits + (ARGV[a + 1] == '1' and 1 or 0)
  a = a + 6 + limits * 3
end

-- Each key written once: the buckets that changed (or expired), the latest admitted clock and the
-- expiry of the last admitted request; a credit counter's value and expiry.
for _, key in ipairs(windowOrder) do
  local state = windows[key]
  local set, gone = {}, {}
  for index in pairs(state.touched) do
    local field = string.format('%.0f', index)
    if state.held[index] then
      set[#set + 1] = field
      set[#set + 1] = state.held[index]
    else
      gone[#gone + 1] = field
    end
  end
  if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
  if state.admitted then
    set[#set + 1] = 't'
    set[#set + 1] = string.format('%.0f', state.latest)
    redis.call('HSET', key, unpack(set))
    redis.call('PEXPIRE', key, state.ttl)
  end
end
for _, key in ipairs(counterOrder) do
  local state = counters[key]
  if state.changed then redis.call('SET', key, string.format('%.0f', state.value), 'PX', state.ttl) end
end
return all
`

// KEYS: the credit counter. ARGV: seed, TTL, amount. Spends min(left, amount); returns {charged, left}.
const CHARGE_SCRIPT = `
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
local left = tonumber(redis.call('GET', KEYS[1]))
local charged = math.min(left, math.max(0, tonumber(ARGV[3])))
if charged > 0 then left = redis.call('DECRBY', KEYS[1], charged) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {charged, left}
`

type ScriptedRedis = Redis & {
  keywardConsume(...args: (string | number)[]): Promise<number[]>
  keywardCharge(key: string, seed: number, ttlMs: number, amount: number): Promise<[number, number]>
}

/** Requests sent in one script call at most (a bound on its argument list). */
const MAX_BATCH = 500

/** One request of a batch. */
interface ConsumeRequest {
  subjects: readonly LimitSubject[]
  cost: number
  nowMs: number
  credits: CreditCharge | undefined
}

/** What a subject contributes to the script, built once per subject object (once per cache fill). */
interface SubjectArgs {
  keys: string[]
  argv: number[]
}

/**
 * The Redis-backed limiter. Loads ioredis on first use, so hosts without Redis never need it.
 *
 * @example
 * const limiter = new RedisLimiter({ redis: process.env.KEYWARD_REDIS_URL })
 * const result = await limiter.consume(subjects, 1, Date.now(), { keyId, epoch, seed })
 */
export class RedisLimiter {
  readonly #prefix: string
  readonly #creditsTtlMs: number
  readonly #connectTimeoutMs: number
  readonly #clientPromise: Promise<ScriptedRedis>
  #client: ScriptedRedis | undefined
  /** The one bounded wait for the first connection; `null` once it is over, whatever its outcome. */
  #startup: Promise<void> | null | undefined
  readonly #subjectArgs = new WeakMap<LimitSubject, SubjectArgs>()
  /** Requests waiting for Redis, sent as one script call per batch (see `consume`). */
  readonly #batcher = new Batcher<ConsumeRequest, LimitResult>((requests) => this.#consumeBatch(requests), {
    maxBatch: MAX_BATCH,
    // Two calls out: Redis runs one script while this process reads the other's answer (measured:
    // one rate limit 0.39 → 0.43× a key without limits; a third out gained nothing more).
    maxOut: 2,
  })

  constructor(options: RedisLimiterOptions) {
    this.#prefix = options.keyPrefix ?? 'keyward:'
    this.#creditsTtlMs = positive(options.creditsTtlMs ?? 7 * 86_400_000, 'creditsTtlMs')
    this.#connectTimeoutMs = positive(options.connectTimeoutMs ?? 2000, 'connectTimeoutMs')
    const clientOptions: Partial<RedisOptions> = {
      // Fail fast instead of queueing while disconnected: the caller falls back or refuses now,
      // and ioredis keeps reconnecting in the background.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: positive(options.commandTimeoutMs ?? 500, 'commandTimeoutMs'),
      connectTimeout: this.#connectTimeoutMs,
      // keyward batches its own calls (see `consume`); ioredis's pipelining would defer each by another turn.
      enableAutoPipelining: false,
    }
    this.#clientPromise = openClient(options.redis, clientOptions).then((client) => {
      this.#client = client
      if (client.status === 'ready') this.#startup = null
      else client.once('ready', () => (this.#startup = null))
      return client
    })
    this.#clientPromise.catch(() => undefined)
  }

  /**
   * Resolves once connected; rejects with `LimiterUnavailableError` if the first connection takes
   * longer than `connectTimeoutMs`. Await it at startup to find a wrong URL before traffic does.
   */
  async ready(): Promise<void> {
    const client = await this.#readyClient()
    if (client.status !== 'ready') throw new LimiterUnavailableError(`Redis is not connected (${client.status})`)
  }

  /**
   * Same contract as `LocalRateLimiter.consume`, across every instance sharing the Redis.
   * Rejects only with `LimiterUnavailableError`.
   *
   * Batched (`Batcher`): the requests that arrive while a batch is out go together in one script
   * call, so a busy instance makes one Redis round trip per batch rather than per request.
   */
  consume(subjects: readonly LimitSubject[], cost: number, nowMs: number, credits?: CreditCharge): Promise<LimitResult> {
    return this.#batcher.add({ subjects, cost, nowMs, credits })
  }

  /** One script call for a batch of requests (see `consume` and the script's header). */
  async #consumeBatch(requests: ConsumeRequest[]): Promise<LimitResult[]> {
    // A missing ioredis package rejects here as it is: a deployment error, not an outage.
    const client = await this.#readyClient()
    const keys: string[] = []
    const argv: (string | number)[] = [requests.length]
    for (const { subjects, cost, nowMs, credits } of requests) {
      const head = argv.length
      argv.push(0, credits === undefined ? '0' : '1', Math.floor(nowMs), cost, credits?.seed ?? 0, this.#creditsTtlMs)
      let limitCount = 0
      for (const subject of subjects) {
        const prepared = this.#argsOf(subject)
        for (const key of prepared.keys) keys.push(key)
        for (const value of prepared.argv) argv.push(value)
        limitCount += prepared.keys.length
      }
      argv[head] = limitCount
      if (credits !== undefined) keys.push(this.creditKey(credits.keyId, credits.epoch))
    }
    let reply: number[]
    try {
      reply = await client.keywardConsume(keys.length, ...keys, ...argv)
    } catch (error) {
      throw unavailable(error)
    }
    let offset = 0
    return requests.map(({ subjects, credits }) => {
      const result = toResult(reply, offset + 1, subjects, credits !== undefined)
      offset += 1 + (reply[offset] as number)
      return result
    })
  }

  /**
   * Spends up to `amount` credits without refusing (metering after the work was done): the
   * counter goes down to 0 and never below. Rejects only with `LimiterUnavailableError`.
   */
  async chargeCredits(credits: CreditCharge, amount: number): Promise<{ charged: number; remaining: number }> {
    const client = await this.#readyClient()
    try {
      const [charged, remaining] = await client.keywardCharge(
        this.creditKey(credits.keyId, credits.epoch),
        credits.seed,
        this.#creditsTtlMs,
        amount,
      )
      return { charged, remaining }
    } catch (error) {
      throw unavailable(error)
    }
  }

  /** Credits left in a counter, or `null` if the epoch has none yet (for persisting, and `GET`). */
  async peekCredits(keyId: string, epoch: string): Promise<number | null> {
    const client = await this.#readyClient()
    try {
      const value = await client.get(this.creditKey(keyId, epoch))
      return value === null ? null : Number(value)
    } catch (error) {
      throw unavailable(error)
    }
  }

  /** The Redis key of a credit counter. */
  creditKey(keyId: string, epoch: string): string {
    return `${this.#prefix}credits:${keyId}:${epoch}`
  }

  /** Closes keyward's own connection. */
  async close(): Promise<void> {
    const client = await this.#clientPromise.catch(() => undefined)
    if (client === undefined) return
    // QUIT needs a live connection; while Redis is away it would wait for a reconnection.
    if (client.status !== 'ready') return client.disconnect()
    await client.quit().catch(() => client.disconnect())
  }

  async #readyClient(): Promise<ScriptedRedis> {
    // A missing ioredis package rejects here as it is: a deployment error, not an outage.
    const client = this.#client ?? (await this.#clientPromise)
    // Requests sent before the first connection wait for it, once and for a bounded time, rather
    // than all fall back at startup. Later outages never wait: with no offline queue the command
    // fails at once and the caller falls back.
    if (client.status !== 'ready' && this.#startup !== null) {
      this.#startup ??= new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer)
          client.off('ready', done)
          this.#startup = null
          resolve()
        }
        const timer = setTimeout(done, this.#connectTimeoutMs)
        client.once('ready', done)
      })
      await this.#startup
    }
    return client
  }

  #argsOf(subject: LimitSubject): SubjectArgs {
    let prepared = this.#subjectArgs.get(subject)
    if (prepared === undefined) {
      prepared = { keys: [], argv: [] }
      for (const limit of subject.limits) {
        prepared.keys.push(`${this.#prefix}rl:${subject.id}:${limit.name}:${limit.windowMs}`)
        prepared.argv.push(limit.limit, limit.windowMs, bucketMsFor(limit.windowMs))
      }
      this.#subjectArgs.set(subject, prepared)
    }
    return prepared
  }
}

/** One request's answer in the script's reply, from `offset` (its status) on. */
function toResult(reply: number[], offset: number, subjects: readonly LimitSubject[], hasCredits: boolean): LimitResult {
  const status = reply[offset] as number
  const refused = reply[offset + 1] as number
  const creditsLeft = reply[offset + 2] as number
  if (status === 3) return CREDITS_UNSEEDED
  const states: LimitState[] = []
  let retryAfterMs = 0
  let at = offset + 3
  for (const subject of subjects) {
    for (const limit of subject.limits) {
      states.push({
        name: limit.name,
        limit: limit.limit,
        remaining: reply[at] as number,
        resetMs: reply[at + 1] as number,
        windowMs: limit.windowMs,
      })
      if (states.length === refused) retryAfterMs = reply[at + 2] as number
      at += 3
    }
  }
  const credits = hasCredits ? { remaining: creditsLeft } : undefined
  if (status === 2) return { ok: false, code: 'credits_exhausted', states, credits: credits ?? { remaining: 0 } }
  if (status === 1) {
    const refusal: LimitResult = { ok: false, code: 'rate_limited', limit: states[refused - 1] as LimitState, retryAfterMs, states }
    if (credits !== undefined) refusal.credits = credits
    return refusal
  }
  return credits === undefined ? { ok: true, states } : { ok: true, states, credits }
}

async function openClient(redis: string | RedisClientLike, options: Partial<RedisOptions>): Promise<ScriptedRedis> {
  let client: Redis
  if (typeof redis === 'string') {
    let RedisClient: typeof Redis
    try {
      ;({ Redis: RedisClient } = await import('ioredis'))
    } catch (error) {
      throw new Error('keyward: the redis option needs the ioredis package (npm install ioredis)', { cause: error })
    }
    client = new RedisClient(redis, options)
  } else {
    client = (redis as unknown as Redis).duplicate(options)
  }
  // Connection errors surface as failed commands (reported once per outage by the caller);
  // without a listener ioredis would print every reconnection failure.
  client.on('error', () => undefined)
  client.defineCommand('keywardConsume', { lua: CONSUME_SCRIPT })
  client.defineCommand('keywardCharge', { lua: CHARGE_SCRIPT, numberOfKeys: 1 })
  return client as ScriptedRedis
}

function unavailable(error: unknown): LimiterUnavailableError {
  if (error instanceof LimiterUnavailableError) return error
  const reason = error instanceof Error ? error.message : String(error)
  return new LimiterUnavailableError(`Redis is unavailable: ${reason}`, { cause: error })
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`keyward: redis ${name} must be a positive number, got ${value}`)
  return value
}
