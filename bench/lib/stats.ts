// Small numeric and printing helpers for the bench reports.

export const now = (): number => performance.timeOrigin + performance.now();

/** Nearest-rank percentile of an unsorted list; NaN for an empty one. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export interface Latency {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function latency(values: number[]): Latency {
  const r = (x: number) => Math.round(x * 10) / 10;
  return {
    p50: r(percentile(values, 50)),
    p95: r(percentile(values, 95)),
    p99: r(percentile(values, 99)),
    max: r(values.length ? Math.max(...values) : NaN),
  };
}

export const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** A plain text table: the first row is the header. */
export function table(rows: Array<Array<string | number>>): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  // Numbers right-aligned, text left-aligned; the last column is not padded.
  const numeric = (c: string) => /^[-\d.\s/]+$/.test(c) && /\d/.test(c);
  const line = (r: string[]) =>
    r.map((c, i) => (i === r.length - 1 && !numeric(c) ? c : numeric(c) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/** Runs `fn(i)` for i in [0, n) with at most `concurrency` at a time. */
export async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, n) }, async () => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  });
  await Promise.all(lanes);
}
