import { describe, expect, it } from 'vitest'
import type { KeyUsage } from '../src/core/types.js'
import { type ChartDay, UsageChart, yAxis } from '../src/page/chart.js'
import { usageSeries } from '../src/page/views/key.js'

/** The usage chart the keys page draws on the server: an SVG string, checked as such. */

function days(counts: readonly number[], limited?: readonly number[]): ChartDay[] {
  return counts.map((requests, index) => {
    const date = new Date(Date.UTC(2026, 2, 1 + index)).toISOString().slice(0, 10)
    return limited === undefined ? { date, requests } : { date, requests, rateLimited: limited[index] ?? 0 }
  })
}

function chart(series: ChartDay[]): string {
  return String(UsageChart({ days: series, id: 'c' }))
}

/** Each bar's height, by class, in order. */
function heights(svg: string, kind: 'bar' | 'bar second'): number[] {
  return [...svg.matchAll(new RegExp(`<rect class="${kind}" x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)"`, 'g'))].map((match) =>
    Number(match[1]),
  )
}

describe('the usage chart', () => {
  it('picks a y axis of whole steps of 1, 2 or 5 × 10^k that covers the busiest day', () => {
    expect(yAxis(0)).toEqual({ top: 1, ticks: [0, 1] })
    expect(yAxis(3)).toEqual({ top: 3, ticks: [0, 1, 2, 3] })
    expect(yAxis(7)).toEqual({ top: 8, ticks: [0, 2, 4, 6, 8] })
    expect(yAxis(180)).toEqual({ top: 200, ticks: [0, 50, 100, 150, 200] })
    expect(yAxis(1234)).toEqual({ top: 1500, ticks: [0, 500, 1000, 1500] })
  })

  it('draws one bar per day, as tall as its count against the axis, with the date and count on each', () => {
    const series = days([...Array.from({ length: 28 }, () => 0), 50, 100])
    const svg = chart(series)
    const bars = heights(svg, 'bar')
    expect(bars).toHaveLength(30)
    expect(bars.slice(0, 28).every((height) => height === 0)).toBe(true)
    expect(bars[29]).toBeCloseTo(2 * (bars[28] as number), 0)
    expect(svg).toContain('<title>30 Mar: 100 requests</title>')
    expect(svg).toContain('<title>29 Mar: 50 requests</title>')
    // Labels every seventh day, ending on the last.
    expect([...svg.matchAll(/text-anchor="middle">(\d+ Mar)</g)].map((match) => match[1])).toEqual([
      '2 Mar',
      '9 Mar',
      '16 Mar',
      '23 Mar',
      '30 Mar',
    ])
  })

  it('keeps a day with a single request visible beside a busy day', () => {
    const bars = heights(chart(days([1, 100000])), 'bar')
    expect(bars[0]).toBeGreaterThan(0)
  })

  it('is one image for screen readers, summarised in words, with every number in a table', () => {
    const svg = chart(days([0, 5, 20, 3]))
    expect(svg).toMatch(/<svg class="chart" viewBox="0 0 720 220" role="img" aria-labelledby="c-title c-desc"/)
    expect(svg).toContain('<title id="c-title">Requests per day</title>')
    expect(svg).toContain('<desc id="c-desc">From 1 Mar to 4 Mar: 28 requests, the most on 3 Mar (20).</desc>')
    expect(svg).toMatch(/<th scope="row" class="nowrap">3 Mar<\/th><td>20<\/td>/)
  })

  it('says so when there were no requests', () => {
    const svg = chart(days([0, 0, 0]))
    expect(svg).toContain('No requests in this period')
    expect(heights(svg, 'bar')).toEqual([0, 0, 0])
  })

  it('draws rate-limited requests as a second series, with a legend, when the usage has them', () => {
    const svg = chart(days([10, 20], [0, 5]))
    expect(heights(svg, 'bar')).toHaveLength(2)
    expect(heights(svg, 'bar second')).toHaveLength(2)
    expect(svg).toContain('<title>2 Mar: 5 rate-limited requests</title>')
    expect(svg).toContain('Rate-limited requests</li>')
    expect(svg).toContain('<th scope="col">Rate-limited</th>')
    expect(chart(days([10, 20]))).not.toContain('Rate-limited')
  })

  it('takes the second series from the core’s daily usage when the key has a rate limit or some day had refusals', () => {
    const day = (date: string, requests: number, rateLimited: number) => ({ date, requests, rateLimited, creditsRefused: 0 })
    const quiet = { daily: [day('2026-03-01', 4, 0), day('2026-03-02', 6, 0)] } as KeyUsage
    expect(usageSeries(quiet, { rateLimits: [] })).toEqual([
      { date: '2026-03-01', requests: 4 },
      { date: '2026-03-02', requests: 6 },
    ])
    expect(usageSeries(quiet, { rateLimits: [{ name: 'per-minute', limit: 10, windowMs: 60_000 }] })).toEqual([
      { date: '2026-03-01', requests: 4, rateLimited: 0 },
      { date: '2026-03-02', requests: 6, rateLimited: 0 },
    ])
    const refused = { daily: [day('2026-03-01', 4, 2)] } as KeyUsage
    expect(usageSeries(refused, { rateLimits: [] })).toEqual([{ date: '2026-03-01', requests: 4, rateLimited: 2 }])
  })
})
