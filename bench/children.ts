/**
 * The server child processes (bench/server.ts): started, asked for their figures over IPC, and
 * always stopped, also on errors and Ctrl-C. The cleanups (the PostgreSQL databases, the run
 * folder) run once, at the end.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { log, messageOf } from './log.js'
import type { ServerConfig, ServerStats } from './server.js'

const ROOT = new URL('..', import.meta.url).pathname
const SERVER_SCRIPT = new URL('./server.ts', import.meta.url).pathname

const children = new Set<ChildProcess>()
const cleanups: (() => Promise<void>)[] = []
let shuttingDown: Promise<void> | undefined

function killAll(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  children.clear()
}

process.on('exit', killAll)

/** Runs at shut-down, the last registered first. */
export function onShutDown(cleanup: () => Promise<void>): void {
  cleanups.push(cleanup)
}

/** Stops every server, runs the cleanups once, exits. */
export function shutDown(code: number): Promise<void> {
  shuttingDown ??= (async () => {
    await Promise.allSettled([...children].map((child) => stopServer(child)))
    killAll()
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((error) => log(`cleanup failed: ${messageOf(error)}`))
    // Stray handles (a PostgreSQL socket, a timer) must not keep a finished bench alive.
    process.exit(code)
  })()
  return shuttingDown
}

export interface StartOptions {
  /** Write a CPU profile of the server into `<profileDir>/<id>/`. */
  profileDir: string | undefined
  /** Run the server on CPU 1 (Linux `taskset`). */
  pin: boolean
}

export function startServer(id: string, config: ServerConfig, options: StartOptions): Promise<{ child: ChildProcess; port: number }> {
  const nodeArgs = ['--import', 'tsx']
  // One folder per server: node also profiles the module-loader thread, into a file of its own.
  if (options.profileDir !== undefined) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${join(options.profileDir, id)}`)
  const command = options.pin ? 'taskset' : process.execPath
  const args = options.pin ? ['-c', '1', process.execPath, ...nodeArgs, SERVER_SCRIPT] : [...nodeArgs, SERVER_SCRIPT]
  const env: NodeJS.ProcessEnv = { ...process.env, KEYWARD_BENCH_SERVER: JSON.stringify(config) }
  // The bench hashes keys with plain SHA-256, as seeded: a pepper in the environment must not leak in.
  delete env.KEYWARD_PEPPER
  delete env.KEYWARD_DATABASE_URL
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  // A closed IPC channel (the server died) surfaces where it is used; never as an unhandled event.
  child.on('error', (error) => log(`${id}: ${error.message}`))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('did not start within 60 s')), 60_000)
    const onEarlyExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(new Error(`exited (${signal ?? code}) before listening`))
    const fail = (error: Error) => {
      clearTimeout(timer)
      child.off('exit', onEarlyExit)
      child.kill('SIGKILL')
      reject(error)
    }
    child.once('exit', onEarlyExit)
    child.on('message', (message: { type: string; port?: number; message?: string }) => {
      if (message.type === 'ready' && typeof message.port === 'number') {
        clearTimeout(timer)
        child.off('exit', onEarlyExit)
        resolve({ child, port: message.port })
      }
      if (message.type === 'failed') fail(new Error(message.message ?? 'failed'))
    })
  })
}

/** Sends a request over IPC and waits for the next `stats` answer. */
export function askStats(child: ChildProcess, type: 'stats' | 'finish', timeoutMs = 15_000): Promise<ServerStats> {
  return new Promise((resolve, reject) => {
    if (!child.connected) return reject(new Error('the server is gone'))
    const done = (error?: Error | null, stats?: ServerStats) => {
      clearTimeout(timer)
      child.off('message', onMessage)
      if (stats !== undefined) resolve(stats)
      else reject(error ?? new Error('no answer'))
    }
    const timer = setTimeout(() => done(new Error(`no answer to ${type} within ${timeoutMs} ms`)), timeoutMs)
    const onMessage = (message: { type: string; stats?: ServerStats }) => {
      if (message.type === 'stats' && message.stats !== undefined) done(null, message.stats)
    }
    child.on('message', onMessage)
    child.send({ type }, (error) => {
      if (error) done(error)
    })
  })
}

/** Asks the server to close (so a CPU profile is written), then kills it if it does not exit. */
export function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      resolve()
    }, 10_000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    if (child.connected) child.send({ type: 'stop' }, (error) => error && child.kill('SIGTERM'))
    else child.kill('SIGTERM')
  })
}
