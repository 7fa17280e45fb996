import { readFileSync } from 'node:fs'
import { relative } from 'node:path'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}

/**
 * The functions with the most self time in a V8 `.cpuprofile` (as written by `node --cpu-prof`),
 * one line each: share of samples, name and location. Idle time is left out of the shares.
 */
export function topSelfTime(path: string, limit = 15): string[] {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as { nodes: ProfileNode[] }
  const byFrame = new Map<string, number>()
  let busy = 0
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0
    const { functionName, url, lineNumber } = node.callFrame
    if (hits === 0 || functionName === '(idle)' || functionName === '(program)') continue
    const where = url === '' ? '' : ` ${shortUrl(url)}:${lineNumber + 1}`
    const name = `${functionName || '(anonymous)'}${where}`
    byFrame.set(name, (byFrame.get(name) ?? 0) + hits)
    busy += hits
  }
  return [...byFrame.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, hits]) => `${((hits / busy) * 100).toFixed(1).padStart(5)} %  ${name}`)
}

function shortUrl(url: string): string {
  const path = url.startsWith('file://') ? new URL(url).pathname : url
  const local = relative(process.cwd(), path)
  return local.startsWith('..') ? path : local
}
