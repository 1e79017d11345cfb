/** Wall-clock timings of interop steps, printed at the end of a suite as figures (never asserted). */
export class Timings {
  readonly entries: [string, number][] = [];

  async timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.entries.push([name, performance.now() - t0]);
    }
  }

  push(name: string, ms: number): void {
    this.entries.push([name, ms]);
  }

  lines(): string[] {
    return this.entries.map(([n, ms]) => `  ${n}: ${ms.toFixed(1)} ms`);
  }
}
