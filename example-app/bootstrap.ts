import type { Keyward } from '../src/index.js'

/** The two demo tenants, so tenant isolation can be tried at once. */
export const DEMO_TENANTS = ['acme', 'globex'] as const

/**
 * On first start with an empty database, creates an admin key for each demo tenant and prints
 * them once, with copy-paste curl lines. On later starts it prints nothing secret: the keys are
 * stored hashed and cannot be shown again.
 */
export async function bootstrapDemoTenants(kw: Keyward, baseUrl: string): Promise<void> {
  for (const tenantId of DEMO_TENANTS) {
    const existing = await kw.listKeys({ tenantId }, { limit: 1 })
    if (!existing.ok) throw new Error(`cannot read the key store: ${existing.error.detail}`)
    if (existing.value.items.length > 0) {
      console.log(`Tenant "${tenantId}" already has keys (they were printed on first start).`)
      continue
    }
    const created = await kw.createKey({ tenantId }, { name: `${tenantId} admin` })
    if (!created.ok) throw new Error(`cannot create the demo key: ${created.error.detail}`)
    const key = created.value.key
    const id = created.value.apiKey.id
    console.log(`
== Tenant "${tenantId}" admin key (shown once, store it now) ==
${key}

  # who am I
  curl -s ${baseUrl}/v1/whoami -H "X-API-Key: ${key}"
  # create an order, list orders
  curl -s -X POST ${baseUrl}/v1/orders -H "X-API-Key: ${key}" -H "Content-Type: application/json" -d '{"item":"coffee"}'
  curl -s ${baseUrl}/v1/orders -H "Authorization: Bearer ${key}"
  # create a read-only key (full secret shown once), list keys (prefix/suffix only), rename, usage
  curl -s -X POST ${baseUrl}/api-keys -H "X-API-Key: ${key}" -H "Content-Type: application/json" -d '{"name":"Reporting","scopes":["orders:read"]}'
  curl -s ${baseUrl}/api-keys -H "X-API-Key: ${key}"
  curl -s -X PATCH ${baseUrl}/api-keys/${id} -H "X-API-Key: ${key}" -H "Content-Type: application/json" -d '{"name":"${tenantId} root"}'
  curl -s ${baseUrl}/api-keys/${id}/usage -H "X-API-Key: ${key}"
  # rotate with a 60 s grace period; revoke (rejected from the next request on)
  curl -s -X POST ${baseUrl}/api-keys/<id>/rotate -H "X-API-Key: ${key}" -H "Content-Type: application/json" -d '{"grace_period_seconds":60}'
  curl -s -X DELETE ${baseUrl}/api-keys/<id> -H "X-API-Key: ${key}"`)
  }
  console.log(`\nTry tenant isolation: list "globex" keys with the "acme" key's id -> 404.`)
}

/** The demo orders store, per tenant, in memory. */
export class DemoOrders {
  readonly #byTenant = new Map<string, { id: number; item: string; created_by: string }[]>()
  #next = 1

  list(tenantId: string) {
    return this.#byTenant.get(tenantId) ?? []
  }

  add(tenantId: string, item: string, keyId: string) {
    const order = { id: this.#next++, item, created_by: keyId }
    const list = this.#byTenant.get(tenantId) ?? []
    list.push(order)
    this.#byTenant.set(tenantId, list)
    return order
  }
}

/**
 * Runs keyward's scheduler, so the example does out of the box what an app should run somewhere:
 * scheduled rotations and their webhooks, retries of event webhooks (the first attempt goes out at
 * once after a change), expiry warnings (`api_key.expiring` / `api_key.expired`) and audit log
 * retention. Every `KEYWARD_SCHEDULER_INTERVAL_MS` milliseconds (default 30 s); `close()` stops it.
 */
export function runScheduler(kw: Keyward, env: Record<string, string | undefined> = process.env): void {
  kw.startScheduler({ intervalMs: Number(env.KEYWARD_SCHEDULER_INTERVAL_MS ?? 30_000) })
}

/** Stops on SIGINT or SIGTERM: the server first, then keyward, whose close() writes buffered usage. */
export function stopOnSignals(server: { close(): unknown }, kw: Keyward): void {
  const stop = () => {
    server.close()
    void kw.close().then(() => process.exit(0))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}
