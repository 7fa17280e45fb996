/**
 * The two clocks tests move by hand: time in keyward comes from `now` (business time: expiry,
 * grace, schedules) and `monotonic` (ages and bounds: cache staleness), never from sleeping.
 * Pass `now: clock.now` and, where ages matter, `monotonicNow: clock.monotonic`.
 */
export class TestClock {
  constructor(
    public ms = Date.parse('2026-03-01T12:00:00.000Z'),
    public monotonicMs = 0,
  ) {}
  now = (): number => this.ms
  /** The monotonic reading, as `performance.now()` would give it. */
  monotonic = (): number => this.monotonicMs
  /** Moves business time only. */
  advance(ms: number): void {
    this.ms += ms
  }
  /** Moves the monotonic clock only (an age or a bound passing). */
  advanceMonotonic(ms: number): void {
    this.monotonicMs += ms
  }
  date(): Date {
    return new Date(this.ms)
  }
}
