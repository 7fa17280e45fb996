import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto'

/**
 * Standard Webhooks 1.0 signing: `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
 * under the secret's decoded bytes. The body signed is the exact string sent.
 */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`
}

export function signWebhook(secret: string, messageId: string, timestampSeconds: number, body: string): string {
  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64')
  const signature = createHmac('sha256', key).update(`${messageId}.${timestampSeconds}.${body}`).digest('base64')
  return `v1,${signature}`
}

export function webhookHeaders(secret: string, messageId: string, timestampSeconds: number, body: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    'webhook-id': messageId,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': signWebhook(secret, messageId, timestampSeconds, body),
  }
}

/**
 * A pending rotation webhook carries the new key's secret, so it must wait somewhere for its
 * retries. With a server secret configured it waits encrypted (AES-256-GCM); either way the
 * payload is wiped once the delivery succeeds or finally fails.
 */
export function sealPayload(body: string, serverSecret: string | undefined): string {
  if (serverSecret === undefined) return body
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', payloadKey(serverSecret), iv)
  const sealed = Buffer.concat([cipher.update(body, 'utf8'), cipher.final()])
  return `sealed:v1:${Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64')}`
}

export function openPayload(stored: string, serverSecret: string | undefined): string {
  if (!stored.startsWith('sealed:v1:')) return stored
  if (serverSecret === undefined) throw new Error('keyward: a sealed webhook payload needs the server secret ("pepper") it was sealed with')
  const raw = Buffer.from(stored.slice('sealed:v1:'.length), 'base64')
  const decipher = createDecipheriv('aes-256-gcm', payloadKey(serverSecret), raw.subarray(0, 12))
  decipher.setAuthTag(raw.subarray(12, 28))
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')
}

function payloadKey(serverSecret: string): Buffer {
  return createHash('sha256').update(`keyward:webhook-payload:${serverSecret}`).digest()
}

/**
 * Retry delays after each failed attempt, in seconds (Standard Webhooks' suggested schedule,
 * shortened at the start). Jitter of up to 20 % is added so retries from many keys spread out.
 */
export const DEFAULT_RETRY_SCHEDULE_SECONDS = [5, 30, 120, 600, 1800, 7200, 18000]
