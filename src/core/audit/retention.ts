import { DAY_MS } from '../records.js'
import type { KeyStore } from '../store.js'

/** Rows deleted per statement, and statements per scheduler run: a backlog drains over several runs. */
const PRUNE_BATCH = 1000
const BATCHES_PER_RUN = 10

/**
 * Deletes audit events (and settled webhook deliveries) older than the retention period, in
 * bounded batches so no run holds a long write lock. Runs with the scheduler.
 */
export async function pruneAuditLog(store: KeyStore, now: Date, retentionDays: number): Promise<number> {
  const before = new Date(now.getTime() - retentionDays * DAY_MS)
  let pruned = 0
  for (let batch = 0; batch < BATCHES_PER_RUN; batch++) {
    const deleted = await store.pruneAudit(before, PRUNE_BATCH)
    pruned += deleted
    if (deleted < PRUNE_BATCH) break
  }
  return pruned
}
