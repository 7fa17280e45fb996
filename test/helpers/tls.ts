import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Certificate {
  /** PEM private key, for the test server. */
  key: string
  /** PEM certificate: the server's, and the client's `ca` (it is its own authority). */
  cert: string
}

/**
 * A self-signed certificate for `hostname` (and 127.0.0.1), valid for two days, made with the openssl
 * CLI: node:crypto makes keys but not X.509 certificates. Pass `cert` as the client's `ca` so TLS is
 * verified for real against the name, not switched off.
 */
export function makeCertificate(hostname: string): Certificate {
  const dir = mkdtempSync(join(tmpdir(), 'keyward-tls-'))
  try {
    const keyPath = join(dir, 'key.pem')
    const certPath = join(dir, 'cert.pem')
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certPath].concat([
        '-days',
        '2',
        '-subj',
        `/CN=${hostname}`,
        '-addext',
        `subjectAltName=DNS:${hostname},IP:127.0.0.1`,
      ]),
      { stdio: 'pipe' },
    )
    return { key: readFileSync(keyPath, 'utf8'), cert: readFileSync(certPath, 'utf8') }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
