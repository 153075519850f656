// The api service: holds references to db and cache, owns a metrics sub-service,
// and serves HTTP once restored (a WinterCG fetch handler on the port it declares).
import { importService, runtime } from 'membrane-snapshot';

runtime.declare({ http: { port: 8080 } });

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

/**
 * HTTP, once live: GET /rows (streamed), GET /rows/:id, PUT /rows/:id
 * {"title": ...}, GET /stats. Each request is a delivery into this service,
 * like any other call.
 */
export async function fetch(request) {
  const url = new URL(request.url);
  const row = /^\/rows\/(\d+)$/.exec(url.pathname);
  if (row && request.method === 'GET') {
    const found = await lookup(Number(row[1]));
    return found.id === undefined ? Response.json({ error: 'no such row' }, { status: 404 }) : Response.json(found);
  }
  if (row && request.method === 'PUT') {
    const { title } = await request.json();
    if (typeof title !== 'string') return Response.json({ error: 'PUT takes {"title": "..."}' }, { status: 400 });
    return Response.json(await update(Number(row[1]), title));
  }
  if (url.pathname === '/rows' && request.method === 'GET') return streamRows();
  if (url.pathname === '/stats' && request.method === 'GET') {
    return Response.json({ metrics: await metrics.describe(), cache: await cache.describe(), invalidated });
  }
  return Response.json({ error: 'not found', routes: ['GET /rows', 'GET /rows/:id', 'PUT /rows/:id', 'GET /stats'] }, { status: 404 });
}

/**
 * Every row as a line of JSON, sent as it is read: each chunk is one call on
 * db's cursor (a reference, on whichever host db runs), made only when the
 * client is ready for more.
 */
function streamRows() {
  const encoder = new TextEncoder();
  let cursor;
  const body = new ReadableStream({
    async pull(controller) {
      cursor ??= await db.openCursor();
      const row = await cursor.next();
      if (row) controller.enqueue(encoder.encode(`${JSON.stringify(row)}\n`));
      else controller.close();
    },
  });
  return new Response(body, { headers: { 'content-type': 'application/x-ndjson' } });
}
