// A sub-service: the api imports it itself, at build time. It runs as a worker
// with two replicas: over NATS, calls to it are shared by a queue group (each
// replica then counts its own share).
import { runtime } from 'membrane-snapshot/runtime';

runtime.declare({ replicas: 2 });

const counts = {};

export function count(name) {
  counts[name] = (counts[name] ?? 0) + 1;
  return counts[name];
}

export function describe() {
  return { ...counts };
}
