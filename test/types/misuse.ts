// Each marked line below must fail to type-check: tsc reports the marker
// as unused (TS2578) if the line compiles.
import { importService } from 'membrane-snapshot';
import type { Totals } from './services/calc.js';

interface Shop {
  price(sku: string): number;
}

const calc = await importService<typeof import('./services/calc.js')>('./services/calc.ts');
const shop = await importService<Shop>('./services/shop.ts', { name: 'shop' });

// @ts-expect-error a call returns a promise: its result needs await
const totals: Totals = calc.add(3);
// @ts-expect-error no property of the result before await
calc.add(3).total;
// @ts-expect-error arguments are checked
calc.add('3');
// @ts-expect-error and counted
calc.add();
// @ts-expect-error no such export
calc.subtract(1);
// @ts-expect-error exports cannot be replaced from outside
calc.version = '2';

const counter = await calc.counter();
// @ts-expect-error a reference exposes its methods, not its data
counter.count;
// @ts-expect-error methods of a reference return promises too
const n: number = counter.inc();

const report = await calc.report();
// @ts-expect-error a reference inside copied data stays a reference
const next: number = report.tools.next(1);

// @ts-expect-error an interface as the type argument is checked like a module type
const price: number = shop.price('x');
// @ts-expect-error
shop.price(1);

const untyped = await importService('./services/shop.ts', { name: 'untyped' });
// @ts-expect-error without a type argument, results are unknown
const cents: number = await untyped.price('x');

void [totals, n, next, price, cents];
