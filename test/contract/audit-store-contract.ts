import { describe, expect, it } from 'vitest'
import { eventDelivery } from '../../src/core/audit/log.js'
import type { AuditEvent, WebhookEndpointRecord } from '../../src/core/audit/types.js'
import { newId } from '../../src/core/key-format.js'
import type { AuditWrite, KeyStore } from '../../src/core/store.js'
import type { ApiKeyRecord, WebhookDelivery } from '../../src/core/types.js'

/**
 * The audit log's part of the store contract (issue 15), run by `describeStoreContract` against
 * every store: events are written in the transaction of the change they record, or not at all.
 */

const T0 = new Date('2026-03-01T12:00:00.000Z')
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000)

export function makeEvent(overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    id: newId('evt'),
    type: 'api_key.updated',
    tenantId: 'tenant_a',
    projectId: null,
    environment: 'live',
    keyId: null,
    actor: { type: 'system', id: null },
    occurredAt: T0,
    ip: '203.0.113.7',
    userAgent: 'curl/8',
    requestId: 'req-1',
    details: { changes: { name: { before: 'a', after: 'b' } } },
    ...overrides,
  }
}

export function makeEndpoint(overrides: Partial<WebhookEndpointRecord> = {}): WebhookEndpointRecord {
  return {
    id: newId('whe'),
    tenantId: 'tenant_a',
    projectId: null,
    environment: null,
    url: 'https://hooks.example.test/keyward',
    events: ['api_key.revoked'],
    createdAt: T0,
    createdBy: { type: 'user', id: 'u1' },
    disabledAt: null,
    secret: 'whsec_abc',
    ...overrides,
  }
}

function deliveryFor(event: AuditEvent, endpoint: WebhookEndpointRecord, overrides: Partial<WebhookDelivery> = {}): WebhookDelivery {
  return { ...eventDelivery(event, endpoint, '{}', T0), ...overrides }
}

/** An event with its seq dropped, as the store returns it for comparison. */
async function eventsOf(store: KeyStore, query: Partial<Parameters<KeyStore['listEvents']>[0]> = {}) {
  const rows = await store.listEvents({ tenantId: 'tenant_a', limit: 100, ...query })
  return rows.map(({ seq: _seq, ...event }) => event)
}

export function describeAuditStoreContract(
  setup: () => { store: KeyStore; another(): Promise<KeyStore>; makeRecord(overrides?: Partial<ApiKeyRecord>): ApiKeyRecord },
): void {
  describe('audit log (issue 15)', () => {
    it('writes a created key with its event and deliveries in one transaction, and a failed insert writes neither', async () => {
      const { store, makeRecord } = setup()
      const endpoint = makeEndpoint({ events: ['api_key.created'] })
      await store.insertWebhookEndpoint(endpoint)
      const record = makeRecord({ createdBy: { type: 'api_key', id: 'key_admin' } })
      const event = makeEvent({ type: 'api_key.created', keyId: record.id })
      const delivery = deliveryFor(event, endpoint)
      await store.insertKey(record, { events: [event], deliveries: [delivery] })
      expect(await store.findKey('tenant_a', record.id)).toEqual(record)
      expect(await eventsOf(store)).toEqual([event])
      expect(await store.listEndpointDeliveries('tenant_a', endpoint.id, 10)).toEqual([delivery])

      // Same hash: the insert fails, and takes its event and delivery with it.
      const duplicate = { ...makeRecord(), keyHash: record.keyHash }
      const lost = makeEvent({ type: 'api_key.created', keyId: duplicate.id })
      await expect(store.insertKey(duplicate, { events: [lost], deliveries: [deliveryFor(lost, endpoint)] })).rejects.toThrow()
      expect((await eventsOf(store)).map((row) => row.id)).toEqual([event.id])
      expect(await store.listEndpointDeliveries('tenant_a', endpoint.id, 10)).toHaveLength(1)
    })

    it('writes at most one delivery per (event, endpoint): a second one fails the whole change', async () => {
      const { store, makeRecord } = setup()
      const endpoint = makeEndpoint({ events: ['api_key.created'] })
      await store.insertWebhookEndpoint(endpoint)
      const record = makeRecord()
      const event = makeEvent({ type: 'api_key.created', keyId: record.id })
      await expect(
        store.insertKey(record, { events: [event], deliveries: [deliveryFor(event, endpoint), deliveryFor(event, endpoint)] }),
      ).rejects.toThrow()
      expect(await store.findKey('tenant_a', record.id)).toBeNull()
      expect(await eventsOf(store)).toEqual([])
    })

    it('hands the audit of an update the row before and after it, exact under concurrent updates from two connections', async () => {
      const { store, another, makeRecord } = setup()
      const record = makeRecord({ name: 'v0' })
      await store.insertKey(record)
      const other = await another()
      const seen: [string, string][] = []
      const audit = (before: ApiKeyRecord, after: ApiKeyRecord): AuditWrite => {
        seen.push([before.name, after.name])
        const changes = { name: { before: before.name, after: after.name } }
        return { events: [makeEvent({ keyId: after.id, details: { changes } })], deliveries: [] }
      }
      await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          (i % 2 === 0 ? store : other).updateKey('tenant_a', record.id, { name: `v${i + 1}` }, at(i), audit),
        ),
      )
      // Oldest first, each event's "before" is the previous one's "after": no update saw a stale row.
      const chain = (await eventsOf(store)).reverse().map((event) => event.details.changes as { name: { before: string; after: string } })
      expect(chain).toHaveLength(8)
      expect(chain[0]?.name.before).toBe('v0')
      for (let i = 1; i < chain.length; i++) expect(chain[i]?.name.before).toBe(chain[i - 1]?.name.after)
      expect((await store.findKey('tenant_a', record.id))?.name).toBe(chain.at(-1)?.name.after)
      expect(seen).toHaveLength(8)
    })

    it('writes no event when the key to update is not there (unknown, or another tenant’s)', async () => {
      const { store, makeRecord } = setup()
      const record = makeRecord()
      await store.insertKey(record)
      let called = 0
      const audit = () => {
        called++
        return { events: [makeEvent()], deliveries: [] }
      }
      expect(await store.updateKey('tenant_a', 'key_nope', { name: 'x' }, at(1), audit)).toBeNull()
      expect(await store.updateKey('tenant_b', record.id, { name: 'x' }, at(1), audit)).toBeNull()
      expect(called).toBe(0)
      expect(await eventsOf(store)).toEqual([])
    })

    it('records the first revoker and one event; a second revoke changes nothing and writes nothing', async () => {
      const { store, makeRecord } = setup()
      const record = makeRecord()
      await store.insertKey(record)
      const first = makeEvent({ type: 'api_key.revoked', keyId: record.id })
      const revoked = await store.revokeKey('tenant_a', record.id, at(10), { type: 'user', id: 'alice' }, () => ({
        events: [first],
        deliveries: [],
      }))
      expect(revoked).toMatchObject({ revokedAt: at(10), revokedBy: { type: 'user', id: 'alice' }, updatedAt: at(10) })
      const seq = await store.latestChangeSeq()
      const again = await store.revokeKey('tenant_a', record.id, at(20), { type: 'user', id: 'bob' }, () => ({
        events: [makeEvent({ type: 'api_key.revoked', keyId: record.id })],
        deliveries: [],
      }))
      expect(again).toEqual(revoked)
      expect(await store.latestChangeSeq()).toBe(seq)
      expect((await eventsOf(store)).map((event) => event.id)).toEqual([first.id])
      expect(await store.revokeKey('tenant_b', record.id, at(30), null, () => ({ events: [makeEvent()], deliveries: [] }))).toBeNull()
      expect(await eventsOf(store)).toHaveLength(1)
    })

    it('writes the event of the one winning rotation among many concurrent ones, across connections', async () => {
      const { store, another, makeRecord } = setup()
      const old = makeRecord()
      await store.insertKey(old)
      const other = await another()
      const attempts = Array.from({ length: 6 }, (_, i) =>
        (i % 2 === 0 ? store : other).rotateKey({
          tenantId: 'tenant_a',
          oldKeyId: old.id,
          newKey: makeRecord({ rotatedFromKeyId: old.id }),
          graceExpiresAt: at(60),
          now: at(1),
          audit: { events: [makeEvent({ type: 'api_key.rotated', keyId: old.id })], deliveries: [] },
        }),
      )
      const outcomes = await Promise.all(attempts)
      expect(outcomes.filter((outcome) => outcome.ok)).toHaveLength(1)
      expect(await eventsOf(store, { type: 'api_key.rotated' })).toHaveLength(1)
    })

    it('writes an event id once however often it is recorded, with its deliveries, even from two connections at once', async () => {
      const { store, another } = setup()
      const endpoint = makeEndpoint({ events: ['api_key.expiring'] })
      await store.insertWebhookEndpoint(endpoint)
      const other = await another()
      const notice = makeEvent({ id: 'evt_notice1', type: 'api_key.expiring', keyId: 'key_1' })
      const write = () => ({ events: [notice], deliveries: [deliveryFor(notice, endpoint)] })
      const [mine, theirs] = await Promise.all([store.recordEvents(write()), other.recordEvents(write())])
      expect([...mine, ...theirs]).toEqual([notice.id])
      expect(await store.recordEvents(write())).toEqual([])
      expect(await eventsOf(store)).toEqual([notice])
      expect(await store.listEndpointDeliveries('tenant_a', endpoint.id, 10)).toHaveLength(1)
      expect(await store.existingEventIds([notice.id, 'evt_other'])).toEqual([notice.id])
      expect(await store.existingEventIds([])).toEqual([])
    })

    it('lists events newest first (ties in the order written), page by page, filtered by what was asked', async () => {
      const { store } = setup()
      const written: AuditEvent[] = []
      for (let i = 0; i < 7; i++) {
        // Two events share each instant: the write order breaks the tie.
        const event = makeEvent({ occurredAt: at(Math.floor(i / 2)), keyId: i % 3 === 0 ? 'key_x' : 'key_y' })
        await store.recordEvents({ events: [event], deliveries: [] })
        written.push(event)
      }
      await store.recordEvents({
        events: [
          makeEvent({ tenantId: 'tenant_b' }),
          makeEvent({ projectId: 'p1', environment: 'test', type: 'api_key.revoked', occurredAt: at(-100) }),
        ],
        deliveries: [],
      })
      const newestFirst = [...written].reverse().map((event) => event.id)
      const seen: string[] = []
      let after: { occurredAt: Date; seq: number } | undefined
      for (;;) {
        const page = await store.listEvents({ tenantId: 'tenant_a', projectId: undefined, type: 'api_key.updated', limit: 3, after })
        seen.push(...page.map((event) => event.id))
        const last = page.at(-1)
        if (page.length < 3 || last === undefined) break
        after = { occurredAt: last.occurredAt, seq: last.seq }
      }
      expect(seen).toEqual(newestFirst)
      expect((await eventsOf(store, { keyId: 'key_x' })).map((event) => event.id)).toEqual(
        newestFirst.filter((id) => written.find((event) => event.id === id)?.keyId === 'key_x'),
      )
      expect(await eventsOf(store, { since: at(3) })).toHaveLength(1)
      expect(await eventsOf(store, { projectId: 'p1' })).toHaveLength(1)
      expect(await eventsOf(store, { environment: 'test' })).toHaveLength(1)
      expect(await eventsOf(store, { type: 'api_key.revoked', environment: 'live' })).toHaveLength(0)
      expect(await eventsOf(store, { tenantId: 'tenant_b' })).toHaveLength(1)
    })

    it('finds keys that stop working in a window, by expiry or by the end of a rotation grace period, page by page', async () => {
      const { store, makeRecord } = setup()
      const expiring = [makeRecord({ expiresAt: at(10) }), makeRecord({ expiresAt: at(10) }), makeRecord({ expiresAt: at(20) })]
      const outside = [
        makeRecord({ expiresAt: at(0) }),
        makeRecord({ expiresAt: at(31) }),
        makeRecord({ expiresAt: at(15), revokedAt: at(1) }),
      ]
      const grace = makeRecord({ replacedByKeyId: 'key_next', graceExpiresAt: at(12) })
      // A grace period without a rotation is no grace period.
      const notRotated = makeRecord({ graceExpiresAt: at(12) })
      for (const record of [...expiring, ...outside, grace, notRotated]) await store.insertKey(record)
      const query = { deadline: 'expiresAt' as const, from: at(0), to: at(30) }
      const all = await store.findKeysEnding({ ...query, limit: 100 })
      expect(all.map((key) => key.id)).toEqual(
        [...expiring]
          .sort((a, b) => (a.expiresAt as Date).getTime() - (b.expiresAt as Date).getTime() || (a.id < b.id ? -1 : 1))
          .map((key) => key.id),
      )
      const first = await store.findKeysEnding({ ...query, limit: 2 })
      const last = first.at(-1) as ApiKeyRecord
      const rest = await store.findKeysEnding({ ...query, limit: 2, after: { at: last.expiresAt as Date, id: last.id } })
      expect([...first, ...rest].map((key) => key.id)).toEqual(all.map((key) => key.id))
      const graceEnding = await store.findKeysEnding({ deadline: 'graceExpiresAt', from: at(0), to: at(30), limit: 100 })
      expect(graceEnding.map((key) => key.id)).toEqual([grace.id])
    })

    it('prunes events and settled deliveries older than the cut-off, a bounded batch at a time, and keeps pending ones', async () => {
      const { store } = setup()
      const endpoint = makeEndpoint({ events: ['api_key.updated'] })
      await store.insertWebhookEndpoint(endpoint)
      const old = Array.from({ length: 5 }, (_, i) => makeEvent({ occurredAt: at(i) }))
      const recent = makeEvent({ occurredAt: at(100) })
      await store.recordEvents({
        events: [...old, recent],
        deliveries: [
          deliveryFor(old[0] as AuditEvent, endpoint, { status: 'succeeded', createdAt: at(0) }),
          deliveryFor(old[1] as AuditEvent, endpoint, { status: 'pending', createdAt: at(1) }),
          deliveryFor(recent, endpoint, { status: 'failed', createdAt: at(100) }),
        ],
      })
      expect(await store.pruneAudit(at(50), 3)).toBe(3)
      expect(await store.pruneAudit(at(50), 3)).toBe(2)
      expect(await store.pruneAudit(at(50), 3)).toBe(0)
      expect((await eventsOf(store)).map((event) => event.id)).toEqual([recent.id])
      const left = await store.listEndpointDeliveries('tenant_a', endpoint.id, 10)
      expect(left.map((delivery) => delivery.status).sort()).toEqual(['failed', 'pending'])
    })

    it('keeps webhook endpoints per tenant, deletes one with its deliveries and its audit, and disables one once', async () => {
      const { store } = setup()
      const first = makeEndpoint({ createdAt: at(1), projectId: 'p1', environment: 'test', events: ['api_key.revoked', 'api_key.created'] })
      const second = makeEndpoint({ createdAt: at(2) })
      const created = makeEvent({ type: 'webhook_endpoint.created' })
      await store.insertWebhookEndpoint(first, { events: [created], deliveries: [] })
      await store.insertWebhookEndpoint(second)
      await store.insertWebhookEndpoint(makeEndpoint({ tenantId: 'tenant_b' }))
      expect(await store.listWebhookEndpoints('tenant_a')).toEqual([first, second])
      expect(await store.findWebhookEndpoint('tenant_a', first.id)).toEqual(first)
      expect(await store.findWebhookEndpoint('tenant_b', first.id)).toBeNull()
      expect((await eventsOf(store)).map((event) => event.id)).toEqual([created.id])

      const event = makeEvent({ type: 'api_key.revoked' })
      await store.recordEvents({ events: [event], deliveries: [deliveryFor(event, first), deliveryFor(event, second)] })
      const deleted = makeEvent({ type: 'webhook_endpoint.deleted' })
      expect(await store.deleteWebhookEndpoint('tenant_b', first.id, () => ({ events: [makeEvent()], deliveries: [] }))).toBeNull()
      expect(await store.deleteWebhookEndpoint('tenant_a', first.id, () => ({ events: [deleted], deliveries: [] }))).toEqual(first)
      expect(await store.findWebhookEndpoint('tenant_a', first.id)).toBeNull()
      expect(await store.listEndpointDeliveries('tenant_a', first.id, 10)).toEqual([])
      expect(await store.listEndpointDeliveries('tenant_a', second.id, 10)).toHaveLength(1)
      expect((await eventsOf(store, { type: 'webhook_endpoint.deleted' })).map((row) => row.id)).toEqual([deleted.id])

      await store.disableWebhookEndpoint('tenant_a', second.id, at(5))
      await store.disableWebhookEndpoint('tenant_a', second.id, at(9))
      expect((await store.findWebhookEndpoint('tenant_a', second.id))?.disabledAt).toEqual(at(5))
    })

    it('claims only the deliveries named, and lists a key’s rotation webhooks without the endpoints’ event deliveries', async () => {
      const { store, makeRecord } = setup()
      const endpoint = makeEndpoint({ events: ['api_key.revoked'] })
      await store.insertWebhookEndpoint(endpoint)
      const key = makeRecord()
      await store.insertKey(key)
      const events = [makeEvent({ keyId: key.id }), makeEvent({ keyId: key.id })]
      const deliveries = events.map((event) => deliveryFor(event, endpoint))
      await store.recordEvents({ events, deliveries })
      const [named, unnamed] = deliveries as [WebhookDelivery, WebhookDelivery]
      expect((await store.claimDeliveries(at(1), at(30), 10, [named.id])).map((delivery) => delivery.id)).toEqual([named.id])
      expect(await store.claimDeliveries(at(1), at(30), 10, [named.id])).toEqual([])
      expect(await store.claimDeliveries(at(1), at(30), 10, [])).toEqual([])
      expect((await store.claimDeliveries(at(1), at(30), 10)).map((delivery) => delivery.id)).toEqual([unnamed.id])
      expect(await store.listDeliveries('tenant_a', [key.id])).toEqual([])
    })
  })
}
