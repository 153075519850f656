/**
 * (g) The live runtime over NATS, on loopback (bench/run.ts runs it; it
 * starts its own nats-server and hosts, each its own process).
 *
 * - Latency: a cross-host call (this process holds a NATS stub of db's
 *   `echo` export, as a restored api would; db runs restored in another
 *   process, so the call crosses the transport codec, NATS, and db's
 *   membrane and turn) against a bare NATS request/reply of the same
 *   record, msgpack-encoded, answered by a responder process that echoes
 *   the bytes. Sequential calls, median of REPS runs. Goal: <= 1.3x bare.
 * - Throughput: calls/s with CONCURRENCY calls in flight, with one and
 *   with two replicas of db in the queue group.
 * - A replica's own work per call, in this process (no NATS): decoding the
 *   call, delivering it to db's membrane, encoding the reply; through host
 *   values (the codec's walk, then the membrane's, each way: how replicas
 *   answered before) against the membrane's wire values passed through.
 *   CPU time, so it holds on a loaded machine where latencies do not.
 *
 * Everything of ours is loaded from dist/ (as run.ts's other sections):
 * msgpackr's extensions are process-wide, so sources and dist/ must not mix.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Directory, type Membrane } from '../dist/membrane/index.js';
import { packr, type Slot } from '../dist/replay-log/index.js';
import { NatsTransport } from '../dist/lib/transport-nats.js';
import { readManifest } from '../dist/lib/manifest.js';
import { restoreSnapshot } from '../dist/lib/index.js';
import { decodeCall, decodeReply, decodeWireCall, encodeCall, encodeReply, encodeWireAnswer, type RefTable, type RemoteRef } from '../dist/lib/transport-codec.js';
import { startHost, startNats } from '../test/hosts.js';
import { benchDir, cliPath, goal, int, median, rate, ratio, repo, runNodeOk, table, tempDir } from './util.js';

const CALLS = 2_000;
const REPS = 5;
const CONCURRENCY = 32;
const THROUGHPUT_CALLS = 6_000;
const PAYLOAD = { id: 42, title: 'a small row', tags: ['snapshot', 'replay'], price: 12.5, active: true };

export const benchNats = async (out: (text?: string) => void): Promise<void> => {
  const teardowns: Array<() => unknown> = [];
  const t = { teardown: (fn: () => unknown) => void teardowns.push(fn) };
  try {
    const dir = path.join(tempDir('nats'), 'snapshot');
    await runNodeOk([cliPath, 'build', path.join(repo, 'test', 'fixtures', 'live', 'build.mjs'), '--out', dir]);
    const echoRef = readManifest(dir).services.api.references.find(r => r.service === 'db' && r.iface === 'function echo');
    if (!echoRef) throw new Error('the fixture api holds no reference to db.echo');
    const nats = await startNats(t);

    const bare = spawn(process.execPath, ['--import', 'tsx', path.join(benchDir, 'nats-echo-child.ts'), nats.url, 'bench.echo'], { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
    teardowns.push(() => bare.kill('SIGKILL'));
    await new Promise<void>(resolve => bare.stdout.once('data', () => resolve()));
    const one = await startHost(t, [dir, '--service', 'db', '--nats', nats.url]);

    const transport = await NatsTransport.connect({ servers: nats.url, app: 'live-fixture' });
    teardowns.push(() => transport.close());
    transport.attach(new Directory());
    const echo = transport.connect(echoRef) as (value: unknown) => Promise<typeof PAYLOAD>;
    const nc = transport.connection;
    const bareEcho = async (value: unknown) => packr.unpack((await nc.request('bench.echo', packr.pack(value), { timeout: 5000 })).data) as typeof PAYLOAD;
    // api restored in this process, joined over NATS as a host of its own: api.relay(record) is db.echo(record)
    // called from api's membrane, so both ends of the call are membranes.
    const apiTransport = await NatsTransport.connect({ servers: nats.url, app: 'live-fixture' });
    teardowns.push(() => apiTransport.close());
    const api = await restoreSnapshot({ dir, services: ['api'], transport: apiTransport, print: () => {} });
    const relay = (api.services.get('api') as { exports: Record<string, unknown> }).exports.relay as (value: unknown) => Promise<typeof PAYLOAD>;

    const sequential = async (fn: (v: unknown) => Promise<typeof PAYLOAD>): Promise<number> => {
      const t0 = performance.now();
      for (let i = 0; i < CALLS; i += 1) if ((await fn(PAYLOAD)).id !== 42) throw new Error('wrong answer');
      return performance.now() - t0;
    };
    const concurrent = async (fn: (v: unknown) => Promise<typeof PAYLOAD>): Promise<number> => {
      let next = 0;
      const t0 = performance.now();
      const worker = async () => {
        while (next < THROUGHPUT_CALLS) {
          next += 1;
          if ((await fn(PAYLOAD)).id !== 42) throw new Error('wrong answer');
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      return performance.now() - t0;
    };

    await sequential(echo);
    await sequential(relay);
    await sequential(bareEcho);
    const crossed: number[] = [];
    const relayed: number[] = [];
    const bares: number[] = [];
    for (let i = 0; i < REPS; i += 1) {
      crossed.push(await sequential(echo));
      relayed.push(await sequential(relay));
      bares.push(await sequential(bareEcho));
    }
    const perCross = (median(crossed) * 1000) / CALLS;
    const perRelay = (median(relayed) * 1000) / CALLS;
    const perBare = (median(bares) * 1000) / CALLS;

    const oneReplica: number[] = [];
    for (let i = 0; i < 3; i += 1) oneReplica.push(await concurrent(echo));
    const two = await startHost(t, [dir, '--service', 'db', '--nats', nats.url]);
    await concurrent(echo);
    const twoReplicas: number[] = [];
    for (let i = 0; i < 3; i += 1) twoReplicas.push(await concurrent(echo));
    const bareThroughput: number[] = [];
    for (let i = 0; i < 3; i += 1) bareThroughput.push(await concurrent(bareEcho));
    await two.stop('SIGTERM');
    await one.stop('SIGTERM');

    out(
      table([
        ['call (same record, msgpack, loopback)', 'per call', 'calls/s', ''],
        ['db.echo(record) across hosts over NATS', `${perCross.toFixed(1)} us`, rate(1e6 / perCross), `${ratio(perCross / perBare)} bare: goal <= 1.3x: ${goal(perCross / perBare <= 1.3)}`],
        ['api.relay(record): db.echo from api\'s membrane', `${perRelay.toFixed(1)} us`, rate(1e6 / perRelay), `${ratio(perRelay / perBare)} bare (adds api's delivery and turn)`],
        ['baseline: bare NATS request/reply, echo process', `${perBare.toFixed(1)} us`, rate(1e6 / perBare), ''],
      ]),
    );
    out(`    sequential, ${int(CALLS)} calls, median of ${REPS}, interleaved; the cross-host call adds the codec, db's membrane and one turn of db.`);
    out(
      table([
        [`throughput, ${CONCURRENCY} calls in flight`, 'calls/s'],
        ['db.echo, one replica', rate((THROUGHPUT_CALLS * 1000) / median(oneReplica))],
        ['db.echo, two replicas (queue group)', rate((THROUGHPUT_CALLS * 1000) / median(twoReplicas))],
        ['baseline: bare request/reply, one echo process', rate((THROUGHPUT_CALLS * 1000) / median(bareThroughput))],
      ]),
    );
    out(`    ${int(THROUGHPUT_CALLS)} calls per run, median of 3; nats-server, both replicas and this process share the machine's cores.`);
    out();
    await benchReplicaWork(dir, echoRef.export, out);
  } finally {
    for (const teardown of teardowns.reverse()) await teardown();
  }
};

const REPLICA_CALLS = 20_000;

/** A replica's work per call in this process: host values (two walks each way) against wire values passed through. */
const benchReplicaWork = async (dir: string, echoExport: number, out: (text?: string) => void): Promise<void> => {
  const restored = await restoreSnapshot({ dir, services: ['db'], print: () => {} });
  const membrane: Membrane = (restored.services.get('db') as { membrane: Membrane }).membrane;
  const refs: RefTable = {
    isRef: () => false,
    toRef: () => {
      throw new Error('the bench record holds no reference');
    },
    fromRef: () => {
      throw new Error('the bench record holds no reference');
    },
  };
  const toSlot = (ref: RemoteRef): Slot => membrane.hostSlot(refs.fromRef(ref));
  const toRef = (slot: Slot): RemoteRef => refs.toRef(membrane.hostObjectOf(slot) as object);
  const message = encodeCall(echoExport, null, [PAYLOAD], refs);
  const viaHostValues = async (): Promise<Uint8Array> => {
    const call = decodeCall(message, refs);
    return encodeReply(true, await membrane.deliverCall(call.target, call.method, call.args), refs);
  };
  const viaWire = async (): Promise<Uint8Array> => {
    const call = decodeWireCall(message, toSlot);
    const answer = await membrane.deliverWireCall(call.target, call.method, call.args);
    return encodeWireAnswer(answer.ok, answer.value, toRef);
  };
  for (const path of [viaHostValues, viaWire]) {
    const reply = decodeReply(await path(), refs);
    if (!('ok' in reply) || JSON.stringify(reply.value) !== JSON.stringify(PAYLOAD)) throw new Error(`${path.name} answered ${JSON.stringify(reply)}`);
  }
  const time = async (path: () => Promise<Uint8Array>): Promise<number> => {
    const t0 = process.cpuUsage();
    for (let i = 0; i < REPLICA_CALLS; i += 1) await path();
    const used = process.cpuUsage(t0);
    return ((used.user + used.system) / REPLICA_CALLS);
  };
  await time(viaHostValues);
  await time(viaWire);
  const hostTimes: number[] = [];
  const wireTimes: number[] = [];
  for (let i = 0; i < REPS; i += 1) {
    hostTimes.push(await time(viaHostValues));
    wireTimes.push(await time(viaWire));
  }
  const host = median(hostTimes);
  const wire = median(wireTimes);
  out(
    table([
      ['a replica\'s work per call, in process (decode, db\'s membrane and turn, encode)', 'CPU per call', 'calls/s of CPU', ''],
      ['wire values passed through (decodeWireCall, deliverWireCall, encodeWireAnswer)', `${wire.toFixed(1)} us`, rate(1e6 / wire), `${ratio(host / wire)} faster`],
      ['baseline: host values (codec walk + membrane walk, each way)', `${host.toFixed(1)} us`, rate(1e6 / host), ''],
    ]),
  );
  out(`    ${int(REPLICA_CALLS)} calls of db.echo(record) one after another, median of ${REPS}, interleaved; both replies checked to decode to the record.`);
};
