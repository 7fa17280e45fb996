import { formatCount, formatDay, plural } from './format.js'

/**
 * A key's usage as an SVG bar chart, drawn on the server: no chart library, no script, no inline
 * style (colours come from the stylesheet's classes, so dark mode applies). One bar per UTC day;
 * when any day has a second count (rate-limited requests, once the core counts them), each day gets
 * a second bar beside the first and the chart a legend.
 *
 * Screen readers get the chart as one image with a summary (`role="img"`, `<title>` and `<desc>`),
 * and every number in the table under "Show the numbers".
 */

export interface ChartDay {
  /** `YYYY-MM-DD`, UTC. */
  date: string
  requests: number
  /** Requests refused by a rate limit that day; leave it out where the core does not count them. */
  rateLimited?: number
}

export interface UsageChartProps {
  /** Oldest first, one entry per day. */
  days: readonly ChartDay[]
  /** Prefix of the element ids, unique in the page. */
  id: string
}

const WIDTH = 720
const HEIGHT = 220
const MARGIN = { top: 12, right: 28, bottom: 30, left: 52 }
const PLOT_WIDTH = WIDTH - MARGIN.left - MARGIN.right
const PLOT_HEIGHT = HEIGHT - MARGIN.top - MARGIN.bottom

/**
 * The y axis: a step of 1, 2 or 5 × 10^k giving at most four intervals, and the top of the axis, a
 * multiple of the step at or above the largest value. Whole numbers only: counts are whole.
 */
export function yAxis(max: number): { top: number; ticks: number[] } {
  if (max <= 0) return { top: 1, ticks: [0, 1] }
  let step = 1
  for (let magnitude = 1; ; magnitude *= 10) {
    const found = [1, 2, 5].map((factor) => factor * magnitude).find((candidate) => max / candidate <= 4)
    if (found !== undefined) {
      step = found
      break
    }
  }
  const top = Math.ceil(max / step) * step
  const ticks: number[] = []
  for (let tick = 0; tick <= top; tick += step) ticks.push(tick)
  return { top, ticks }
}

export function UsageChart({ days, id }: UsageChartProps) {
  const second = days.some((day) => day.rateLimited !== undefined)
  const max = Math.max(0, ...days.map((day) => Math.max(day.requests, day.rateLimited ?? 0)))
  const { top, ticks } = yAxis(max)
  const band = PLOT_WIDTH / Math.max(days.length, 1)
  const barWidth = second ? band * 0.38 : band * 0.66
  const y = (value: number) => MARGIN.top + PLOT_HEIGHT - (value / top) * PLOT_HEIGHT
  // A day with any requests stays visible however tall the busiest day is.
  const barHeight = (value: number) => (value <= 0 ? 0 : Math.max(1.5, (value / top) * PLOT_HEIGHT))
  const round = (value: number) => Math.round(value * 10) / 10
  const last = days.length - 1
  const labelled = (index: number) => (last - index) % 7 === 0

  return (
    <figure class="chart-figure">
      <svg
        class="chart"
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-labelledby={`${id}-title ${id}-desc`}
        xmlns="http://www.w3.org/2000/svg"
      >
        <title id={`${id}-title`}>{second ? 'Requests and rate-limited requests per day' : 'Requests per day'}</title>
        <desc id={`${id}-desc`}>{describe(days, second)}</desc>
        {ticks.map((tick) => (
          <g>
            <line class={tick === 0 ? 'axis' : 'grid'} x1={MARGIN.left} x2={WIDTH - MARGIN.right} y1={round(y(tick))} y2={round(y(tick))} />
            <text x={MARGIN.left - 8} y={round(y(tick)) + 4} text-anchor="end">
              {formatCount(tick)}
            </text>
          </g>
        ))}
        {days.map((day, index) => {
          const start = MARGIN.left + index * band + (band - (second ? barWidth * 2 + 2 : barWidth)) / 2
          return (
            <g>
              <rect
                class="bar"
                x={round(start)}
                y={round(MARGIN.top + PLOT_HEIGHT - barHeight(day.requests))}
                width={round(barWidth)}
                height={round(barHeight(day.requests))}
              >
                <title>{`${formatDay(day.date)}: ${plural(day.requests, 'request')}`}</title>
              </rect>
              {second ? (
                <rect
                  class="bar second"
                  x={round(start + barWidth + 2)}
                  y={round(MARGIN.top + PLOT_HEIGHT - barHeight(day.rateLimited ?? 0))}
                  width={round(barWidth)}
                  height={round(barHeight(day.rateLimited ?? 0))}
                >
                  <title>{`${formatDay(day.date)}: ${plural(day.rateLimited ?? 0, 'rate-limited request')}`}</title>
                </rect>
              ) : null}
              {labelled(index) ? (
                <text x={round(MARGIN.left + index * band + band / 2)} y={HEIGHT - 10} text-anchor="middle">
                  {formatDay(day.date)}
                </text>
              ) : null}
            </g>
          )
        })}
        {max === 0 ? (
          <text class="empty" x={MARGIN.left + PLOT_WIDTH / 2} y={MARGIN.top + PLOT_HEIGHT / 2} text-anchor="middle">
            No requests in this period
          </text>
        ) : null}
      </svg>
      {second ? (
        <ul class="legend">
          <li>
            <span class="swatch" aria-hidden="true"></span>Requests
          </li>
          <li>
            <span class="swatch second" aria-hidden="true"></span>Rate-limited requests
          </li>
        </ul>
      ) : null}
      <details>
        <summary>Show the numbers</summary>
        <table>
          <caption class="visually-hidden">{second ? 'Requests and rate-limited requests per day' : 'Requests per day'}</caption>
          <thead>
            <tr>
              <th scope="col">Day (UTC)</th>
              <th scope="col">Requests</th>
              {second ? <th scope="col">Rate-limited</th> : null}
            </tr>
          </thead>
          <tbody>
            {days.map((day) => (
              <tr>
                <th scope="row" class="nowrap">
                  {formatDay(day.date)}
                </th>
                <td>{formatCount(day.requests)}</td>
                {second ? <td>{formatCount(day.rateLimited ?? 0)}</td> : null}
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  )
}

/** The chart in one sentence, for screen readers: the period, the total and the busiest day. */
function describe(days: readonly ChartDay[], second: boolean): string {
  const first = days[0]
  const final = days.at(-1)
  if (first === undefined || final === undefined) return 'No data.'
  const total = days.reduce((sum, day) => sum + day.requests, 0)
  const busiest = days.reduce((best, day) => (day.requests > best.requests ? day : best), first)
  let text = `From ${formatDay(first.date)} to ${formatDay(final.date)}: ${plural(total, 'request')}`
  text += total > 0 ? `, the most on ${formatDay(busiest.date)} (${formatCount(busiest.requests)}).` : '.'
  if (second)
    text += ` ${plural(
      days.reduce((sum, day) => sum + (day.rateLimited ?? 0), 0),
      'rate-limited request',
    )}.`
  return text
}
