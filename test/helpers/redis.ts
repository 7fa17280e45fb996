import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'
import { afterAll } from 'vitest'

/** The server CI and every session machine run. Override with KEYWARD_TEST_REDIS_URL. */
export const REDIS_URL = process.env.KEYWARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

async function probe(): Promise<string | null> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => undefined)
  try {
    await client.connect()
    await client.ping()
    return null
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  } finally {
    client.disconnect()
  }
}

/**
 * Whether Redis tests can run. In CI (CI=true) an unreachable server is a failure, not a skip:
 * `describe.skipIf(!hasRedis)` would otherwise turn a broken setup green.
 */
const problem = await probe()
if (problem !== null) {
  if (process.env.CI === 'true') throw new Error(`Redis is required in CI but ${REDIS_URL} is unreachable: ${problem}`)
  console.warn(`\n[keyward tests] SKIPPING Redis tests: ${REDIS_URL} is unreachable (${problem}).\n`)
}
export const hasRedis = problem === null

const prefixes: string[] = []
const clients: Redis[] = []
const servers = new Set<ChildProcess>()

afterAll(async () => {
  for (const server of servers) server.kill('SIGKILL')
  for (const client of clients.splice(0)) client.disconnect()
  if (prefixes.length === 0 || !hasRedis) return
  const admin = new Redis(REDIS_URL)
  for (const prefix of prefixes.splice(0)) {
    let cursor = '0'
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      if (keys.length > 0) await admin.del(...keys)
      cursor = next
    } while (cursor !== '0')
  }
  admin.disconnect()
})

/** A key prefix no other test uses; its keys are deleted after the file. */
export function freshRedisPrefix(): string {
  const prefix = `keyward-test:${randomBytes(6).toString('hex')}:`
  prefixes.push(prefix)
  return prefix
}

/** A plain client on the test server, to look at what keyward wrote (closed after the file). */
export function inspector(url = REDIS_URL): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 0 })
  client.on('error', () => undefined)
  clients.push(client)
  return client
}

export interface ThrowawayRedis {
  url: string
  /** SIGKILL: the server vanishes as in a crash. */
  stop(): Promise<void>
  /** A new server on the same port (empty: it saves nothing). */
  start(): Promise<void>
}

/**
 * A redis-server child process of this test's own, on a free port, saving nothing, so a test can
 * stop "Redis" without touching the machine's server that others use.
 */
export async function throwawayRedis(): Promise<ThrowawayRedis> {
  const port = await freePort()
  let child: ChildProcess | undefined
  const start = async () => {
    const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    servers.add(server)
    child = server
    let output = ''
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start in 10 s:\n${output}`)), 10_000)
      server.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer)
          resolve()
        }
      })
      server.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`redis-server exited with ${code}:\n${output}`))
      })
    })
  }
  const stop = async () => {
    const server = child
    if (server === undefined || server.exitCode !== null || server.signalCode !== null) return
    await new Promise<void>((resolve) => {
      server.once('exit', () => resolve())
      server.kill('SIGKILL')
    })
    servers.delete(server)
  }
  await start()
  return { url: `redis://127.0.0.1:${port}`, start, stop }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}
