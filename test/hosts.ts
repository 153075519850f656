/**
 * Test helpers for the live runtime: a real nats-server with JetStream on a
 * free loopback port, and `snapshot restore` hosts, each its own process.
 * Every process started here is killed when the test that started it ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { cliPath, fixture, lastJson, moveToTarget, repo, snapshot, tempDir, withoutTapHooks, type Run } from './helpers.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

const canConnect = (port: number): Promise<boolean> =>
  new Promise(resolve => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

const exited = (child: ChildProcess): Promise<number | null> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve(child.exitCode) : new Promise(resolve => child.once('exit', code => resolve(code)));

export interface NatsServer {
  readonly url: string;
  stop(): Promise<void>;
}

/** Start `nats-server -js` on a free loopback port with a temporary store (`extra`: more options, e.g. --user/--pass); stopped at teardown. */
export const startNats = async (t: Teardown, extra: readonly string[] = []): Promise<NatsServer> => {
  const port = await freePort();
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'msnap-nats-'));
  const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', d => (log += d));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited(child);
    fs.rmSync(store, { recursive: true, force: true });
  };
  t.teardown(stop);
  for (let i = 0; i < 100 && !(await canConnect(port)); i += 1) {
    if (child.exitCode !== null) break;
    await new Promise(resolve => setTimeout(resolve, 50));
  }
  if (!(await canConnect(port))) throw new Error(`nats-server did not start on port ${port}:\n${log}`);
  return { url: `nats://127.0.0.1:${port}`, stop };
};

export interface Host {
  readonly child: ChildProcess;
  /** Everything the host printed so far. */
  readonly output: () => string;
  /** The URL of the host's HTTP service, when it serves one. */
  readonly httpUrl?: string;
  /** Send a signal and wait for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Run `snapshot restore <args>` and wait for its "ready:" line (at most 30 s); killed at teardown. */
export const startHost = async (t: Teardown, args: string[]): Promise<Host> => {
  // Pinned locale: the CLI runs in this very process (no re-exec), so a kill reaches the host itself.
  const child = spawn(...withoutTapHooks(process.execPath, [cliPath, 'restore', ...args]), {
    cwd: repo,
    env: { ...process.env, NODE_OPTIONS: '', LC_ALL: 'C.UTF-8', TZ: 'UTC', MEMBRANE_SNAPSHOT_PINNED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', d => (out += d));
  child.stderr?.on('data', d => (out += d));
  const stop = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited(child);
  };
  t.teardown(() => stop('SIGKILL'));
  const deadline = Date.now() + 30_000;
  while (!/^ready: /m.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop('SIGKILL');
      throw new Error(`snapshot restore ${args.join(' ')} did not become ready:\n${out}`);
    }
    await new Promise(resolve => setTimeout(resolve, 20));
  }
  const httpUrl = /^http: \S+ listening on (\S+)$/m.exec(out)?.[1];
  return { child, output: () => out, ...(httpUrl ? { httpUrl } : {}), stop };
};

export interface LiveApp {
  /** The built snapshot directory, and a copy of only it (what restore hosts read). */
  readonly out: string;
  readonly target: string;
  readonly nats: NatsServer;
  /** `snapshot restore <source> --service api --nats <url> --call api.<method>`: a caller host, its answer. */
  callApi(method: string, args?: unknown[], extra?: string[], source?: string): Promise<{ run: Run; value: unknown }>;
}

/** Build test/fixtures/live (db and an HTTP api), copy the snapshot away, start a nats-server. */
export const liveApp = async (t: Teardown, name: string): Promise<LiveApp> => {
  const out = path.join(tempDir(name), 'snapshot');
  const built = await snapshot(['build', fixture('live', 'build.mjs'), '--out', out]);
  if (built.code !== 0) throw new Error(built.stderr);
  const target = moveToTarget(out);
  const nats = await startNats(t);
  const callApi = async (method: string, args: unknown[] = [], extra: string[] = [], source = target) => {
    const run = await snapshot(['restore', source, '--service', 'api', '--nats', nats.url, ...extra, '--call', `api.${method}`, '--args', JSON.stringify(args)], { timeoutMs: 60_000 });
    return { run, value: run.code === 0 ? lastJson(run) : undefined };
  };
  return { out, target, nats, callApi };
};
