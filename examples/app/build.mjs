// Build script of the three-service app: wires the services, then does build-time work.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { importService } from 'membrane-snapshot';

const db = await importService('./services/db.js', { name: 'db' });
const cache = await importService('./services/cache.js', { name: 'cache' });
const api = await importService('./services/api.js', { name: 'api' });

await api.wire(db, cache); // api now holds references to the other two, and owns metrics
await db.load(fileURLToPath(new URL('./seed.json', import.meta.url)));
const warmed = await api.warm();
await api.lookup(1); // cache hit
await api.update(2, 'Replay it anywhere'); // db notifies api, api invalidates the cache
const fresh = await api.lookup(2); // cache miss: from db
const same = await api.holdsSameDb(db);

const state = {
  warmed,
  fresh,
  same,
  db: await db.describe(),
  cache: await cache.describe(),
  api: await api.describe(),
};
console.log(JSON.stringify(state, null, 2));
if (process.env.APP_STATE_FILE) fs.writeFileSync(process.env.APP_STATE_FILE, JSON.stringify(state));
