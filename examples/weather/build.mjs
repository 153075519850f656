// Build script of the weather example. Run it with
//
//   snapshot build build.mjs --out snapshot        (cwd: examples/weather)
//
// It plays the remote forecast API itself, on a loopback HTTP server that
// exists only while the build runs, records the weather service's
// initialisation against it, and prints the service's state as JSON.
// If WEATHER_STATE_FILE is set, the same JSON is also written to that file
// (run.sh compares it with the restored state).
import http from 'node:http';
import fs from 'node:fs';
import { importService } from 'membrane-snapshot';

const conditions = ['clear', 'partly cloudy', 'overcast', 'light rain', 'showers', 'snow'];
let requests = 0;

const server = http.createServer((req, res) => {
  requests += 1;
  const url = new URL(req.url, 'http://api.invalid');
  if (url.pathname !== '/v1/forecast') {
    res.statusCode = 404;
    return res.end();
  }
  // A cold start: the very first request is turned away, so the service
  // has to back off and retry (a timer and Math.random at build time).
  if (requests === 1) {
    res.statusCode = 503;
    return res.end('warming up');
  }
  const city = url.searchParams.get('city') ?? '?';
  const lat = Number(url.searchParams.get('lat'));
  const seed = [...city].reduce((n, c) => (n * 31 + c.charCodeAt(0)) >>> 0, 7);
  const body = {
    issuedAt: new Date().toISOString(),
    requestId: req.headers['x-request-id'] ?? null,
    units: url.searchParams.get('units'),
    summary: conditions[seed % conditions.length],
    high: Math.round(25 - Math.abs(lat) / 3 + (seed % 5)),
    low: Math.round(15 - Math.abs(lat) / 3 - (seed % 4)),
    windKmh: 5 + (seed % 30),
  };
  // Answer some cities later than others, so the responses arrive out of order.
  setTimeout(() => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(body));
  }, seed % 25);
});

await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
const apiUrl = `http://127.0.0.1:${server.address().port}`;

try {
  const weather = await importService('./services/weather.js', { name: 'weather' });
  await weather.init(apiUrl);
  const state = await weather.describe();
  console.log(JSON.stringify(state, null, 2));
  if (process.env.WEATHER_STATE_FILE) fs.writeFileSync(process.env.WEATHER_STATE_FILE, `${JSON.stringify(state)}\n`);
} finally {
  // The API goes away with the build: a restored service cannot reach it.
  server.close();
}
