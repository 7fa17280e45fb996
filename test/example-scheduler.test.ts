import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Webhook } from 'standardwebhooks'
import { afterEach, describe, expect, it } from 'vitest'
import { readJson } from './helpers/http.js'
import { tempSqlitePath } from './helpers/sqlite.js'
import { type ReceivedWebhook, waitFor, webhookReceiver } from './helpers/webhook-receiver.js'

/**
 * The example apps as `npm start` runs them (a real process), checked for what issue 15 asks of
 * them: they run keyward's scheduler, so an expiry warning reaches a tenant's webhook endpoint with
 * nobody calling `runDueRotations()`.
 */

const children: ChildProcess[] = []
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode !== null) continue
    await new Promise((resolve) => {
      child.once('exit', resolve)
      child.kill('SIGTERM')
    })
  }
})

/** Starts an example on a free port and reads its base URL and the acme admin key from its output. */
async function startExample(script: string, database: string): Promise<{ url: string; adminKey: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(`../example-app/${script}`, import.meta.url))], {
    env: {
      ...process.env,
      PORT: '0',
      KEYWARD_DATABASE_URL: database,
      KEYWARD_SCHEDULER_INTERVAL_MS: '100',
      // The receiver below is a plain-HTTP server on 127.0.0.1.
      KEYWARD_WEBHOOKS_ALLOW_PRIVATE_NETWORKS: '1',
      KEYWARD_WEBHOOKS_ALLOW_INSECURE_HTTP: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  // The listening line and the demo keys come in either order.
  await waitFor(() => (/Try tenant isolation/.test(output) && /listening on/.test(output)) || child.exitCode !== null, 30_000)
  const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1]
  const adminKey = /== Tenant "acme" admin key[^\n]*\n(sk_live_\w+)/.exec(output)?.[1]
  if (url === undefined || adminKey === undefined) throw new Error(`the example did not start:\n${output}`)
  return { url, adminKey }
}

describe.each(['hono.ts', 'express.ts'])('the example app (%s)', (script) => {
  it('runs the scheduler: an expiry warning reaches a webhook endpoint without anyone calling it', async () => {
    const { url, adminKey } = await startExample(script, tempSqlitePath())
    const hook = await webhookReceiver()
    const headers = { 'x-api-key': adminKey, 'content-type': 'application/json' }
    const endpoint = await fetch(`${url}/api-keys/webhook-endpoints`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ url: hook.url, events: ['api_key.expiring'] }),
    })
    expect(endpoint.status).toBe(201)
    const { secret } = await readJson(endpoint)
    const created = await fetch(`${url}/api-keys`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'expires within the day', expires_in_seconds: 3600 }),
    })
    expect(created.status).toBe(201)
    const { id } = await readJson(created)
    await waitFor(() => hook.received.length > 0, 20_000)
    const warning = new Webhook(secret).verify(
      (hook.received[0] as ReceivedWebhook).body,
      (hook.received[0] as ReceivedWebhook).headers,
    ) as {
      type: string
      data: { key_id: string; actor: unknown; details: { threshold_seconds: number } }
    }
    expect(warning).toMatchObject({
      type: 'api_key.expiring',
      data: { key_id: id, actor: { type: 'system', id: 'scheduler' }, details: { threshold_seconds: 86_400 } },
    })
  })
})
