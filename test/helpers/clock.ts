/** A clock tests move by hand: time in keyward comes from `now`, never from sleeping. */
export class TestClock {
  constructor(public ms = Date.parse('2026-03-01T12:00:00.000Z')) {}
  now = (): number => this.ms
  advance(ms: number): void {
    this.ms += ms
  }
  date(): Date {
    return new Date(this.ms)
  }
}
