/**
 * What the floor of figure (d) replays by hand for each realistic service:
 * the build script's deliveries, in order, and the API its loopback server
 * plays, as an in-memory handler (see floor-io.ts).
 */
import path from 'node:path';
import { deliveries as catalogDeliveries, makeApi } from './fixtures/catalog/api.mjs';
import type { ApiHandler } from './floor-io.js';
import { benchDir, repo } from './util.js';

export interface FloorSpec {
  /** The service's name in the snapshot. */
  readonly service: string;
  /** The build script that records it (run with `snapshot build`). */
  readonly buildScript: string;
  /** A fresh API, stateful like the build script's server. */
  readonly api: () => ApiHandler;
  /** The calls the build script makes on the service, in order. */
  readonly deliveries: (base: string) => Array<[method: string, args: unknown[]]>;
}

const catalogData = path.join(benchDir, 'fixtures', 'catalog', 'data') + path.sep;

/** bench/fixtures/catalog: fetches a paginated catalogue, builds an immer store. */
const catalog: FloorSpec = {
  service: 'catalog',
  buildScript: path.join(benchDir, 'fixtures', 'catalog', 'build.mjs'),
  api: () => {
    const api = makeApi();
    return request => api.handle(request);
  },
  deliveries: base => catalogDeliveries(base, catalogData),
};

/**
 * test/fixtures/kitchen: every recorded builtin. Mirrors what
 * test/fixtures/kitchen/build.mjs serves and calls (without KITCHEN_ARM_LATE);
 * keep the two in step if that script changes.
 */
const kitchen: FloorSpec = {
  service: 'kitchen',
  buildScript: path.join(repo, 'test', 'fixtures', 'kitchen', 'build.mjs'),
  api: () => {
    let slowCount = 0;
    const headers = { 'x-test': 'yes' };
    return ({ method, url, headers: requestHeaders, body }) => {
      const { pathname } = new URL(url);
      if (pathname === '/forecast') return { status: 200, headers, body: JSON.stringify({ summary: 'sunny', temp: 21 }) };
      if (pathname === '/slow') return { status: 200, headers, body: `slow${++slowCount}` };
      if (pathname === '/echo') return { status: 200, headers, body: `echo:${method}:${requestHeaders['x-kitchen']}:${body ?? ''}` };
      return { status: 404, headers, body: '' };
    };
  },
  deliveries: base => [
    ['init', [base, path.join(repo, 'test', 'fixtures', 'kitchen', 'services', 'data.txt')]],
    ['describe', []],
  ],
};

export const floorSpecs: Readonly<Record<string, FloorSpec>> = { catalog, kitchen };
