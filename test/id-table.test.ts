// The membrane's table of pending answers and promises: a Map's behaviour, whatever order ids come and go in.
import t from 'tap';
import { IdTable } from '../membrane/id-table.js';

/** A deterministic pseudo-random sequence (no Math.random in tests that must fail the same way twice). */
const lcg = (seed: number) => () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;

t.test('matches a Map through random sets and deletes, with ids held long, released out of order and far apart', async t => {
  const random = lcg(7);
  const table = new IdTable<{ id: number }>();
  const map = new Map<number, { id: number }>();
  let next = 1;
  const mismatches: string[] = [];
  for (let step = 0; step < 40_000; step += 1) {
    const roll = random();
    if (roll < 0.5 || map.size === 0) {
      // Mostly the next id; now and then one far ahead, or one long below the others.
      const id = roll < 0.01 ? next + 5000 : roll < 0.02 && next > 3000 ? next - 3000 + Math.floor(random() * 100) : next;
      next += 1;
      if (map.has(id)) continue;
      const record = { id };
      table.set(id, record);
      map.set(id, record);
    } else {
      // Release one: the oldest, the newest, or any; one id (held from the start) is never released.
      const ids = [...map.keys()].filter(id => id !== 1);
      if (ids.length === 0) continue;
      const id = roll < 0.7 ? Math.min(...ids) : roll < 0.85 ? Math.max(...ids) : ids[Math.floor(random() * ids.length)];
      table.delete(id);
      map.delete(id);
    }
    if (step % 97 === 0) {
      for (const id of [0, 1, next - 1, next, next + 5000, Math.floor(random() * next)]) if (table.get(id) !== map.get(id)) mismatches.push(`step ${step}: get(${id})`);
      const listed = [...table.entries()].map(([id]) => id).sort((a, b) => a - b);
      if (listed.join() !== [...map.keys()].sort((a, b) => a - b).join()) mismatches.push(`step ${step}: entries`);
    }
  }
  t.same(mismatches.slice(0, 5), []);
  t.ok(map.size > 0 && table.get(1)?.id === 1, 'the record held from the start is still there');
  table.clear();
  t.same([...table.entries()], []);
  t.equal(table.get(next - 1), undefined);
});

t.test('entries come in id order for ids handed out in order', async t => {
  const table = new IdTable<string>();
  for (let id = 3; id < 9; id += 1) table.set(id, `#${id}`);
  table.delete(3);
  table.delete(6);
  t.same([...table.entries()], [[4, '#4'], [5, '#5'], [7, '#7'], [8, '#8']]);
});
