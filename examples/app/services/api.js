// The api service: holds references to db and cache, and owns a metrics sub-service.
import { importService } from 'membrane-snapshot';

let db;
let cache;
let metrics;
const invalidated = [];

export async function wire(dbService, cacheService) {
  db = dbService;
  cache = cacheService;
  metrics = await importService('./metrics.js', { name: 'metrics' });
  await db.subscribe(id => {
    invalidated.push(id);
    return cache.invalidate(id);
  });
  return 'wired';
}

export async function lookup(id) {
  const cached = await cache.lookup(id);
  if (cached) {
    await metrics.count('hit');
    return { ...cached.value, from: 'cache' };
  }
  const row = await db.get(id);
  await cache.store(id, row);
  await metrics.count('miss');
  return { ...row, from: 'db' };
}

export async function warm() {
  const cursor = await db.openCursor();
  const ids = [];
  for (let row = await cursor.next(); row; row = await cursor.next()) {
    ids.push(row.id);
    await cache.store(row.id, row);
  }
  const titles = [];
  await db.forEach({ visit: row => titles.push(row.title) });
  return { ids, titles, remaining: await cursor.remaining() };
}

export const update = (id, title) => db.put({ id, title });

/** Identity is kept: the same reference arrives as the same proxy. */
export const holdsSameDb = other => other.get === db.get;

export function describe() {
  return { wired: db !== undefined, invalidated };
}
