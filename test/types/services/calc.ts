// A typed service for the type tests: data, functions, a class instance and
// a record holding a reference.
export interface Totals {
  total: number;
  count: number;
  at: Date;
}

export const version = '1.2.0';
const totals: Totals = { total: 0, count: 0, at: new Date(0) };

export function add(n: number): Totals {
  totals.total += n;
  totals.count += 1;
  totals.at = new Date();
  return { ...totals };
}

export async function history(limit = 10): Promise<number[]> {
  return [totals.total].slice(0, limit);
}

export class Counter {
  count = 0;
  inc(by = 1): number {
    this.count += by;
    return this.count;
  }
}

export const counter = (): Counter => new Counter();

export const report = () => ({ title: 'totals', totals: { ...totals }, tags: new Set(['a']), tools: { next: (n: number) => totals.total + n } });
