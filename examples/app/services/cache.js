// The cache service: remembers rows for the api.
const entries = new Map();
let hits = 0;
let misses = 0;

export function lookup(key) {
  if (entries.has(key)) {
    hits += 1;
    return entries.get(key);
  }
  misses += 1;
  return null;
}

export function store(key, value) {
  entries.set(key, { value, storedAt: Date.now() });
  return entries.size;
}

export function invalidate(key) {
  return entries.delete(key);
}

export function describe() {
  return { hits, misses, keys: [...entries.keys()].sort((a, b) => a - b) };
}
