import { existsSync } from 'node:fs'
import { type Browser, chromium } from 'playwright-core'

/**
 * Debian's Chromium for every browser test (never a downloaded build), driven by playwright-core. Without it the tests skip with a message, except in CI,
 * where a missing browser fails the run.
 */
export const CHROMIUM = '/usr/bin/chromium'
export const hasChromium = existsSync(CHROMIUM)

/** Call at the top of a browser test file: throws in CI without Chromium, warns otherwise. */
export function requireChromium(what: string): void {
  if (hasChromium) return
  if (process.env.CI === 'true') throw new Error(`${what} need Debian's Chromium at ${CHROMIUM} in CI (apt-get install -y chromium).`)
  console.warn(`\n[keyward tests] SKIPPING ${what}: no ${CHROMIUM} (apt-get install -y chromium).\n`)
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30_000,
  })
}
