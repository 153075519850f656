// The database service: rows in memory, loaded from a file at build time.
import fs from 'node:fs';

const rows = new Map();
const subscribers = [];
let loadedAt;

export function load(file) {
  for (const row of JSON.parse(fs.readFileSync(file, 'utf8'))) rows.set(row.id, { ...row, version: 1 });
  loadedAt = Date.now();
  return rows.size;
}

export function get(id) {
  return rows.get(id) ?? null;
}

export function put(row) {
  const next = { ...row, version: (rows.get(row.id)?.version ?? 0) + 1 };
  rows.set(row.id, next);
  for (const notify of subscribers) notify(row.id); // callbacks held from other services
  return next;
}

/** Takes a callback from another service. */
export function subscribe(callback) {
  subscribers.push(callback);
  return subscribers.length;
}

/** Hands out an object with behaviour. */
export function openCursor() {
  const ids = [...rows.keys()].sort((a, b) => a - b);
  let at = 0;
  return {
    next: () => (at < ids.length ? rows.get(ids[at++]) : null),
    remaining: () => ids.length - at,
  };
}

/** Takes an object with behaviour from another service. */
export async function forEach(visitor) {
  for (const id of [...rows.keys()].sort((a, b) => a - b)) await visitor.visit(rows.get(id));
  return rows.size;
}

export function describe() {
  return { size: rows.size, loadedAt, subscribers: subscribers.length, rows: [...rows.values()] };
}
