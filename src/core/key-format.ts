import { createHmac, hash, randomBytes } from 'node:crypto'
import { crc32 } from 'node:zlib'
import type { Environment } from './types.js'

/**
 * The key format: `<prefix>_<environment>_<random><checksum>`.
 *
 * - `random` is 30 base62 characters from the CSPRNG (~178 bits, as GitHub's tokens).
 * - `checksum` is the CRC32 of everything before it, in 6 base62 characters with leading zeros, so
 *   a mistyped or made-up key is rejected by arithmetic alone, before any cache or database work.
 * - Underscores (not dashes) let a double-click select the whole key.
 */

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
export const RANDOM_LENGTH = 30
export const CHECKSUM_LENGTH = 6
export const BODY_LENGTH = RANDOM_LENGTH + CHECKSUM_LENGTH
/** Shown in listings: `<prefix>_<env>_` plus this many body characters (seed 000: `pk_live_f8a3`). */
export const DISPLAY_BODY_CHARS = 4
export const SUFFIX_LENGTH = 4

/** Prefixes are validated against this, never turned into a RegExp (passport-headerapikey's bug). */
export const PREFIX_PATTERN = /^[a-z0-9]{1,12}$/

export interface GeneratedKey {
  /** The full secret. Returned to the caller once and never stored. */
  key: string
  /** `<prefix>_<env>_` + the first 4 body characters, for display. */
  keyPrefix: string
  /** The last 4 characters, for display. */
  keySuffix: string
}

export interface ParsedKey {
  prefix: string
  environment: Environment
}

/** Uniform base62 characters from the CSPRNG (rejection sampling: no modulo bias). */
export function randomBase62(length: number): string {
  let out = ''
  while (out.length < length) {
    const bytes = randomBytes(length * 2)
    for (let i = 0; i < bytes.length && out.length < length; i++) {
      const byte = bytes[i] as number
      if (byte < 248) out += BASE62[byte % 62]
    }
  }
  return out
}

function checksumOf(text: string): string {
  let value = crc32(text)
  let out = ''
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = BASE62[value % 62] + out
    value = Math.floor(value / 62)
  }
  return out
}

/** Mints a new key. Pure apart from the randomness; `hashKey` turns the result into what is stored. */
export function generateKey(prefix: string, environment: Environment): GeneratedKey {
  assertPrefix(prefix)
  const head = `${prefix}_${environment}_`
  const random = randomBase62(RANDOM_LENGTH)
  const key = head + random + checksumOf(head + random)
  return {
    key,
    keyPrefix: head + random.slice(0, DISPLAY_BODY_CHARS),
    keySuffix: key.slice(-SUFFIX_LENGTH),
  }
}

/** Each character code's base62 value, or -1: one table read per character on the hot path. */
const BASE62_VALUES = (() => {
  const values = new Int8Array(128).fill(-1)
  for (let i = 0; i < BASE62.length; i++) values[BASE62.charCodeAt(i)] = i
  return values
})()

/** CRC-32 (IEEE 802.3, as zlib's) of one more byte: a table lookup per character. */
const CRC_TABLE = (() => {
  const table = new Int32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c
  }
  return table
})()

function crcOfAscii(state: number, text: string): number {
  let crc = state
  for (let i = 0; i < text.length; i++) crc = (CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff] as number) ^ (crc >>> 8)
  return crc
}

/**
 * A key check for one prefix, built once: `check(candidate)` answers the key's environment, or
 * null for anything that cannot be a key we minted — so a caller answers `invalid_api_key`
 * without touching the cache or the database.
 *
 * Every request with a key runs it, so it allocates nothing: it reads character codes (no RegExp,
 * no substring), starts the CRC-32 from the precomputed state after `<prefix>_live_` or
 * `<prefix>_test_`, continues it over the random part while checking the base62 alphabet in the
 * same pass, and compares the checksum as a number.
 */
export function keyChecker(prefix: string): (candidate: string) => Environment | null {
  assertPrefix(prefix)
  const head = prefix.length + 6 // `<prefix>_live_`
  const length = head + BODY_LENGTH
  const cut = length - CHECKSUM_LENGTH
  const liveState = crcOfAscii(-1, `${prefix}_live_`)
  const testState = crcOfAscii(-1, `${prefix}_test_`)
  return function checkKey(candidate: string): Environment | null {
    if (candidate.length !== length || !candidate.startsWith(prefix)) return null
    const environment = environmentAt(candidate, prefix.length)
    if (environment === null) return null
    let crc = environment === 'live' ? liveState : testState
    let checksum = 0
    for (let i = head; i < cut; i++) {
      const code = candidate.charCodeAt(i)
      // Codes above 127 read undefined, which is not >= 0: refused like any other non-base62 code.
      if (!((BASE62_VALUES[code] as number) >= 0)) return null
      crc = (CRC_TABLE[(crc ^ code) & 0xff] as number) ^ (crc >>> 8)
    }
    for (let i = cut; i < length; i++) {
      const value = BASE62_VALUES[candidate.charCodeAt(i)] as number
      if (!(value >= 0)) return null
      checksum = checksum * 62 + value
    }
    return checksum === (crc ^ -1) >>> 0 ? environment : null
  }
}

const checkers = new Map<string, (candidate: string) => Environment | null>()

/**
 * Checks shape and checksum. Returns null for anything that cannot be a key we minted, so the
 * caller can answer `invalid_api_key` without touching the cache or the database.
 */
export function parseKey(candidate: string, expectedPrefix: string): ParsedKey | null {
  let check = checkers.get(expectedPrefix)
  if (check === undefined) {
    if (!PREFIX_PATTERN.test(expectedPrefix)) return null
    check = keyChecker(expectedPrefix)
    checkers.set(expectedPrefix, check)
  }
  const environment = check(candidate)
  return environment === null ? null : { prefix: expectedPrefix, environment }
}

/** `_live_` or `_test_` at `at`. */
function environmentAt(candidate: string, at: number): Environment | null {
  if (candidate.charCodeAt(at) !== 95 || candidate.charCodeAt(at + 5) !== 95) return null // '_'
  if (candidate.startsWith('live', at + 1)) return 'live'
  if (candidate.startsWith('test', at + 1)) return 'test'
  return null
}

/**
 * What is stored: SHA-256 of the whole key, or HMAC-SHA256 under a server-side pepper so a leaked
 * table alone cannot be checked against guesses. Keys carry ~178 random bits, so a slow KDF would
 * buy nothing and cost every request (Medusa's scrypt-per-request, medusajs/medusa#12695).
 */
export function hashKey(key: string, pepper?: string): string {
  if (pepper === undefined) return hash('sha256', key, 'hex')
  return createHmac('sha256', pepper).update(key).digest('hex')
}

export function assertPrefix(prefix: string): void {
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new Error(`keyward: option "prefix" must be 1-12 characters of [a-z0-9], got ${JSON.stringify(prefix)}`)
  }
}

/** Random identifiers such as `key_3hV...`: 22 base62 characters, ~131 bits. */
export function newId(kind: string): string {
  return `${kind}_${randomBase62(22)}`
}
