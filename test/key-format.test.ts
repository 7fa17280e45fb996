import { crc32 } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { BODY_LENGTH, generateKey, hashKey, parseKey, randomBase62 } from '../src/core/key-format.js'
import { Keyward } from '../src/core/keyward.js'
import { createSqliteStore } from '../src/store/sqlite/index.js'
import { makeRecord } from './contract/store-contract.js'
import { tempSqlitePath } from './helpers/sqlite.js'

/**
 * Minted by the v0.1 format. It must verify forever: a format or hashing change that breaks
 * existing keys (better-auth#4080, #5397) fails here. Never regenerate these constants.
 */
const FIXTURE = {
  key: 'sk_live_oMYl9r4ASsWNmtIfxuBylWjNnvAtSM0RD2UX',
  keyPrefix: 'sk_live_oMYl',
  keySuffix: 'D2UX',
  sha256: 'cc6d00d40bcd6aeac88257dee360ac162659c00c032fa081fe97c1b220758efe',
  hmacWithPepper1: 'ed9e3274659bf6aaa795c7c40988c62dd36bfca85a19031211dc2966040c8dc0',
}

describe('key format', () => {
  it('mints <prefix>_<env>_<36 base62 chars> with display prefix and suffix', () => {
    const live = generateKey('sk', 'live')
    expect(live.key).toMatch(new RegExp(`^sk_live_[0-9A-Za-z]{${BODY_LENGTH}}$`))
    expect(live.keyPrefix).toBe(live.key.slice(0, 'sk_live_'.length + 4))
    expect(live.keySuffix).toBe(live.key.slice(-4))
    expect(generateKey('pk', 'test').key).toMatch(/^pk_test_[0-9A-Za-z]{36}$/)
  })

  it('round-trips: every minted key parses with its environment', () => {
    for (let i = 0; i < 200; i++) {
      const env = i % 2 === 0 ? 'live' : 'test'
      expect(parseKey(generateKey('acme1', env).key, 'acme1')).toEqual({ prefix: 'acme1', environment: env })
    }
  })

  it('never mints the same key twice in 10,000 draws', () => {
    const keys = new Set(Array.from({ length: 10_000 }, () => generateKey('sk', 'live').key))
    expect(keys.size).toBe(10_000)
  })

  it('draws base62 characters without modulo bias (chi-square within bounds)', () => {
    const counts = new Map<string, number>()
    const sample = randomBase62(62_000)
    for (const char of sample) counts.set(char, (counts.get(char) ?? 0) + 1)
    expect(counts.size).toBe(62)
    const chiSquare = [...counts.values()].reduce((sum, n) => sum + (n - 1000) ** 2 / 1000, 0)
    // 61 degrees of freedom: p = 0.0001 at ~113.
    expect(chiSquare).toBeLessThan(113)
  })

  it('rejects any single-character typo through the checksum', () => {
    const { key } = generateKey('sk', 'live')
    const body = key.slice('sk_live_'.length)
    for (let i = 0; i < body.length; i++) {
      const replacement = body[i] === 'a' ? 'b' : 'a'
      const typo = `sk_live_${body.slice(0, i)}${replacement}${body.slice(i + 1)}`
      expect(parseKey(typo, 'sk'), `typo at ${i}`).toBeNull()
    }
  })

  it('rejects a key moved to another environment or prefix, and malformed input', () => {
    const { key } = generateKey('sk', 'live')
    expect(parseKey(key.replace('_live_', '_test_'), 'sk')).toBeNull()
    expect(parseKey(key, 'pk')).toBeNull()
    for (const bad of [
      '',
      'sk_live_',
      `${key} `,
      `${key}x`,
      key.slice(0, -1),
      key.toUpperCase(),
      `sk_prod_${key.slice(8)}`,
      `x`.repeat(10_000),
    ]) {
      expect(parseKey(bad, 'sk'), JSON.stringify(bad.slice(0, 20))).toBeNull()
    }
  })

  it('agrees with a reference parser (RegExp + encoded checksum) on valid, mutated and re-checksummed keys', () => {
    // The reference is the format's definition written the slow, obvious way.
    const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
    const encode = (text: string) => {
      let value = crc32(text)
      let out = ''
      for (let i = 0; i < 6; i++) {
        out = BASE62[value % 62] + out
        value = Math.floor(value / 62)
      }
      return out
    }
    const reference = (candidate: string, prefix: string) => {
      const match = /^([a-z0-9]{1,12})_(live|test)_([0-9A-Za-z]{36})$/.exec(candidate)
      if (match === null || match[1] !== prefix) return null
      return encode(candidate.slice(0, -6)) === candidate.slice(-6) ? { prefix, environment: match[2] } : null
    }
    const alphabet = `${BASE62}_-. ~/+=é\u0000`
    let accepted = 0
    for (let i = 0; i < 5000; i++) {
      const { key } = generateKey('sk', i % 2 === 0 ? 'live' : 'test')
      const at = i % key.length
      const mutated = key.slice(0, at) + (alphabet[(i * 7) % alphabet.length] as string) + key.slice(at + 1)
      // Recomputing the checksum over a mutated head gives inputs that pass the CRC but may break
      // the shape (an underscore or a dash in the body, a changed environment).
      const rechecked = mutated.slice(0, -6) + encode(mutated.slice(0, -6))
      for (const candidate of [key, mutated, rechecked]) {
        const expected = reference(candidate, 'sk')
        if (expected !== null) accepted++
        expect(parseKey(candidate, 'sk'), JSON.stringify(candidate)).toEqual(expected)
      }
    }
    expect(accepted).toBeGreaterThan(5000) // every minted key, and re-checksummed ones still well-formed
  })

  it('refuses a prefix outside [a-z0-9]{1,12}, naming the option', () => {
    for (const prefix of ['', 'SK', 'sk_x', 'a'.repeat(13), '.*']) {
      expect(() => generateKey(prefix, 'live')).toThrow(/option "prefix"/)
    }
  })

  it('hashes with SHA-256, or HMAC-SHA256 under a pepper', () => {
    expect(hashKey(FIXTURE.key)).toBe(FIXTURE.sha256)
    expect(hashKey(FIXTURE.key, 'pepper-1')).toBe(FIXTURE.hmacWithPepper1)
  })

  it('still accepts the fixture key minted by v0.1, end to end through a store', async () => {
    expect(parseKey(FIXTURE.key, 'sk')).toEqual({ prefix: 'sk', environment: 'live' })
    const store = createSqliteStore({ url: tempSqlitePath() })
    await store.insertKey(makeRecord({ keyHash: FIXTURE.sha256, keyPrefix: FIXTURE.keyPrefix, keySuffix: FIXTURE.keySuffix }))
    const kw = new Keyward({ store, usage: false })
    const decision = await kw.verify(FIXTURE.key)
    expect(decision.ok).toBe(true)
    await kw.close()
  })
})
