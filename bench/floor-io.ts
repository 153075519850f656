/**
 * The "floor" world of figure (d): every outside wait removed, so that what
 * is left of a cold start is the service's own work.
 *
 * - fetch: the host's `fetch` is replaced by a stub that answers from an
 *   in-memory API handler (the very handler the build script serves over
 *   loopback), with no network, no HTTP stack and no latency. The stub's
 *   response is a plain object with what compartments/fetch.ts reads from a
 *   Response (url, status, statusText, redirected, headers, arrayBuffer), so
 *   that answering costs nothing and loads nothing (undici stays as lazy as
 *   it is on a restore).
 * - timers: the `node:timers` functions the timers endowment arms are
 *   replaced so that every timeout and interval fires on the next
 *   setImmediate turn instead of after its delay.
 * - files: read for real, from the page cache (microseconds).
 *
 * Only for a child process started to measure the floor: it patches
 * process-wide objects.
 */
import timers from 'node:timers';

export interface StubRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | null;
}

export interface StubResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export type ApiHandler = (request: StubRequest) => StubResponse;

interface FetchInit {
  readonly method?: string;
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  readonly body?: string | Uint8Array | null;
}

/** Replace the host's fetch with an instant in-memory one. */
export const installStubFetch = (handle: ApiHandler): void => {
  const stub = async (url: string, init: FetchInit = {}) => {
    const body = init.body === undefined || init.body === null ? null : typeof init.body === 'string' ? init.body : Buffer.from(init.body).toString('utf8');
    const answer = handle({ method: init.method ?? 'GET', url, headers: Object.fromEntries(init.headers ?? []), body });
    const bytes = Buffer.from(answer.body, 'utf8');
    return {
      url,
      status: answer.status,
      statusText: '',
      redirected: false,
      headers: Object.entries(answer.headers).map(([k, v]) => [k.toLowerCase(), v] as const),
      arrayBuffer: async (): Promise<ArrayBuffer> => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
    };
  };
  Object.defineProperty(globalThis, 'fetch', { value: stub, writable: true, configurable: true, enumerable: true });
};

interface InstantTimer {
  cancelled: boolean;
  immediate: NodeJS.Immediate | undefined;
}

type TimerModule = Record<'setTimeout' | 'setInterval' | 'clearTimeout' | 'clearInterval', unknown>;

/** Make every timeout and interval armed through `node:timers` fire on the next turn. */
export const installInstantTimers = (): void => {
  const { setImmediate, clearImmediate, clearTimeout, clearInterval } = timers;
  const isInstant = (handle: unknown): handle is InstantTimer => typeof handle === 'object' && handle !== null && 'cancelled' in handle;
  const cancel = (handle: InstantTimer): void => {
    handle.cancelled = true;
    if (handle.immediate) clearImmediate(handle.immediate);
  };
  const patched: TimerModule = {
    setTimeout: (fn: () => void): InstantTimer => {
      const handle: InstantTimer = { cancelled: false, immediate: undefined };
      handle.immediate = setImmediate(() => {
        if (!handle.cancelled) fn();
      });
      return handle;
    },
    setInterval: (fn: () => void): InstantTimer => {
      const handle: InstantTimer = { cancelled: false, immediate: undefined };
      const tick = (): void => {
        if (handle.cancelled) return;
        handle.immediate = setImmediate(tick);
        fn();
      };
      handle.immediate = setImmediate(tick);
      return handle;
    },
    clearTimeout: (handle: unknown): void => (isInstant(handle) ? cancel(handle) : clearTimeout(handle as NodeJS.Timeout)),
    clearInterval: (handle: unknown): void => (isInstant(handle) ? cancel(handle) : clearInterval(handle as NodeJS.Timeout)),
  };
  Object.assign(timers, patched);
};
