// The weather service of the bundled example.
//
// Its initialisation depends on everything a snapshot has to capture:
//   - a file:       the list of cities (services/cities.json, read with fs)
//   - the network:  one forecast request per city to a remote API (fetch),
//                   retried with a backoff when the API answers 503
//   - time:         Date.now(), new Date(), performance.now()
//   - randomness:   crypto.randomUUID() (a request id) and Math.random()
//                   (backoff jitter, the tip of the day)
//   - a timer:      setTimeout for the backoff, and a refresh interval that
//                   is still pending when the build ends
//   - the environment: process.env.WEATHER_UNITS
//
// At build time all of this really happens and is recorded. On restore the
// same code runs again from the replay log: the file, the API and the clock
// are not consulted, and the service ends up in exactly the same state.
import { readFile } from 'node:fs/promises';

const loadedAt = new Date().toISOString();

const tips = [
  'Pack an umbrella anyway.',
  'Layers beat a single thick coat.',
  'Sunscreen works on cloudy days too.',
  'Check the wind before you cycle.',
];

const state = {
  service: 'weather',
  loadedAt,
  initialisedAt: null,
  initMs: null,
  initPerfMs: null,
  source: null,
  requestId: null,
  units: null,
  attempts: 0,
  retries: [],
  tip: null,
  cities: {},
  refreshes: 0,
  lastRefreshError: null,
};

let apiUrl;

/** GET a JSON document; a 503 is retried after a jittered exponential backoff. */
async function getJson(url, headers) {
  for (let attempt = 1; ; attempt += 1) {
    state.attempts += 1;
    const response = await fetch(url, { headers });
    if (response.status === 503 && attempt < 4) {
      const delay = 10 * 2 ** attempt + Math.floor(Math.random() * 10);
      state.retries.push({ url: new URL(url).pathname, attempt, delay });
      await new Promise(resolve => setTimeout(resolve, delay));
      continue;
    }
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.json();
  }
}

async function fetchForecasts(cities) {
  const headers = { 'x-request-id': state.requestId, accept: 'application/json' };
  // The requests run concurrently; their responses settle in whatever order
  // the build host saw, and replay repeats that order.
  const forecasts = await Promise.all(
    cities.map(city => {
      const query = new URLSearchParams({ city: city.name, lat: String(city.lat), lon: String(city.lon), units: state.units });
      return getJson(`${apiUrl}/v1/forecast?${query}`, headers).then(forecast => [city.name, forecast]);
    }),
  );
  return Object.fromEntries(forecasts);
}

/** Load the cities, fetch their forecasts, arm the refresh timer. */
export async function init(url) {
  const started = Date.now();
  const t0 = performance.now();
  apiUrl = url;
  state.source = url;
  state.units = process.env.WEATHER_UNITS ?? 'metric';
  state.requestId = crypto.randomUUID();

  const cities = JSON.parse(await readFile(new URL('./cities.json', import.meta.url), 'utf8'));
  state.cities = await fetchForecasts(cities);
  state.tip = tips[Math.floor(Math.random() * tips.length)];

  // Refresh every half hour. When the build ends this timer is still
  // pending: it is recorded, and armed again (with its full delay) once the
  // restored service goes live on its new host.
  setInterval(() => {
    fetchForecasts(cities).then(
      fresh => {
        state.cities = fresh;
        state.refreshes += 1;
      },
      error => {
        state.lastRefreshError = `${new Date().toISOString()}: ${error.message}`;
      },
    );
  }, 30 * 60 * 1000);

  state.initialisedAt = new Date().toISOString();
  state.initMs = Date.now() - started;
  state.initPerfMs = Math.round((performance.now() - t0) * 1000) / 1000;
  console.log(`weather: ${cities.length} forecasts from ${url} in ${state.initMs} ms (${state.attempts} requests)`);
  return 'ready';
}

/** The whole state, as plain data. */
export function describe() {
  return state;
}

/** One city's recorded forecast, stamped with the current (live) time. */
export function forecast(city) {
  const entry = state.cities[city];
  if (!entry) throw new Error(`no forecast for "${city}"; known cities: ${Object.keys(state.cities).join(', ')}`);
  return { city, ...entry, servedAt: new Date().toISOString() };
}
