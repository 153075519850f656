// A sub-service: the api imports it itself, at build time.
const counts = {};

export function count(name) {
  counts[name] = (counts[name] ?? 0) + 1;
  return counts[name];
}

export function describe() {
  return { ...counts };
}
