// A typed build script: it must compile under `tsc --noEmit` (strict) and run.
import fs from 'node:fs';
import { importService, type Remote } from 'membrane-snapshot';
import type { Totals } from './services/calc.js';

interface Shop {
  price(sku: string): number;
  order(sku: string, count: number): Promise<{ sku: string; count: number; cents: number }>;
}

const calc = await importService<typeof import('./services/calc.js')>('./services/calc.ts');
const shop: Remote<Shop> = await importService<Shop>('./services/shop.ts', { name: 'shop' });

const pending: Promise<Totals> = calc.add(3);
const first: Totals = await pending;
const second = await calc.add(4);
const sum: number = first.total + second.total;
const when: Date = second.at;
const version: string = calc.version;
const history: number[] = await calc.history();

const counter = await calc.counter();
const one: Promise<number> = counter.inc();
const counted: number = (await one) + (await counter.inc(2));

const report = await calc.report();
const title: string = report.title;
const tags: Set<string> = report.tags;
const next: number = await report.tools.next(1);

const cents: number = await shop.price('ab');
const order = await shop.order('abc', 2);

const state = { sum, when: when instanceof Date, version, history, counted, title, tags: [...tags], next, cents, order };
fs.writeFileSync(process.env.TYPES_STATE_FILE ?? 'state.json', JSON.stringify(state));
