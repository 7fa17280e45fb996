import { fail, ok, type Result } from '../errors.js'
import { checkActor, parseInput, type UsageInput, usageInputSchema } from '../management/inputs.js'
import { findVisible } from '../management/lookup.js'
import { requireScope } from '../management/policy.js'
import { DAY_MS } from '../records.js'
import type { Runtime } from '../runtime.js'
import type { Actor, ApiKeyRecord, KeyUsage } from '../types.js'
import { utcDay } from './buffer.js'

/** Rotation chains are walked this far at most, so a corrupt chain cannot loop. */
const MAX_CHAIN = 100

/**
 * Request counts for a key: totals, last use and a daily series over `days` (≤ 90). With
 * `includePredecessors`, the keys it was rotated from are counted too, so a rotation keeps its
 * usage history (mozilla-ai/otari#271).
 */
export async function getUsage(runtime: Runtime, actor: Actor, id: string, input: UsageInput = {}): Promise<Result<KeyUsage>> {
  const denied = checkActor(actor) ?? requireScope(actor, 'api_keys:read')
  if (denied) return denied
  const parsed = parseInput(usageInputSchema, input)
  if (!parsed.ok) return parsed
  const dayCount = parsed.value.days ?? 30
  return runtime.guard(async (store) => {
    // This process's buffer is written first, so a single instance reads its own counts (and
    // last use) exactly.
    await runtime.usage?.flush()
    const record = await findVisible(store, actor, id)
    if (record === null) return fail('not_found')
    const chain: ApiKeyRecord[] = [record]
    if (parsed.value.includePredecessors) {
      let previous = record.rotatedFromKeyId
      while (previous !== null && chain.length < MAX_CHAIN) {
        const older = await store.findKey(record.tenantId, previous)
        if (older === null) break
        chain.push(older)
        previous = older.rotatedFromKeyId
      }
    }
    const keyIds = chain.map((key) => key.id)
    const nowMs = runtime.options.clock.now()
    const fromDay = utcDay(nowMs - (dayCount - 1) * DAY_MS)
    const [series, total] = await Promise.all([store.usageByDay(keyIds, fromDay), store.totalRequests(keyIds)])
    const days = new Map(series.map((entry) => [entry.day, entry]))
    const daily: KeyUsage['daily'] = []
    for (let i = dayCount - 1; i >= 0; i--) {
      const date = utcDay(nowMs - i * DAY_MS)
      const day = days.get(date)
      daily.push({ date, requests: day?.count ?? 0, rateLimited: day?.rateLimited ?? 0, creditsRefused: day?.creditsRefused ?? 0 })
    }
    let lastUsedAt: Date | null = null
    for (const key of chain)
      if (key.lastUsedAt !== null && (lastUsedAt === null || key.lastUsedAt > lastUsedAt)) lastUsedAt = key.lastUsedAt
    return ok({
      keyId: record.id,
      name: record.name,
      createdAt: record.createdAt,
      lastUsedAt,
      daysSinceCreation: Math.floor((nowMs - record.createdAt.getTime()) / DAY_MS),
      daysSinceLastUse: lastUsedAt === null ? null : Math.floor((nowMs - lastUsedAt.getTime()) / DAY_MS),
      totalRequests: total,
      keyIds,
      daily,
    })
  })
}
