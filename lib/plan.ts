/**
 * `snapshot plan <dir> [--out dir]`: turn the services' runtime declarations
 * into deploy files. Writes `compose.yaml` (a NATS server with JetStream,
 * then one container per service replica, each restoring its service from
 * the object store and joining the others over NATS; declared HTTP ports
 * published) and `plan.txt` (the same plan in words, with the commands to
 * run it).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Manifest } from './manifest.js';
import { subjectToken } from './subjects.js';

/** The NATS image the plan runs (JetStream enabled by `-js`). */
export const NATS_IMAGE = 'nats:2.10-alpine';
/** The Node image the services run on, unless MEMBRANE_SNAPSHOT_IMAGE says otherwise. */
export const NODE_IMAGE = 'node:20-slim';

export interface PlannedReplica {
  readonly container: string;
  readonly service: string;
  readonly replica: number;
  /** The HTTP port inside the container and the one published on the host, when declared. */
  readonly http?: { readonly port: number; readonly published?: number };
}

export interface Plan {
  readonly app: string;
  readonly replicas: readonly PlannedReplica[];
  readonly compose: string;
  readonly summary: string;
}

const q = (value: string): string => JSON.stringify(value); // a JSON string is a YAML scalar

/**
 * Container name stems, one per service: lower case letters, digits and
 * `-` (compose's rule), made unique where two names differ only in case
 * or punctuation (`a.b`, `a_b` and `A-b` are `a-2eb`, `a-b` and `a-b-2`).
 */
const containerStems = (names: readonly string[]): Map<string, string> => {
  const stems = new Map<string, string>();
  const used = new Set<string>();
  for (const name of names) {
    const base = subjectToken(name).toLowerCase().replace(/[^a-z0-9-]/g, '-');
    let stem = base;
    for (let n = 2; used.has(stem); n += 1) stem = `${base}-${n}`;
    used.add(stem);
    stems.set(name, stem);
  }
  return stems;
};

/** Containers for an app: one per service replica. The first replica of an HTTP service publishes its port. */
export const makePlan = (manifest: Manifest, app: string, libraryVersion: string): Plan => {
  const replicas: PlannedReplica[] = [];
  const stems = containerStems(Object.keys(manifest.services));
  for (const service of Object.values(manifest.services)) {
    const count = service.runtime?.replicas ?? 1;
    for (let i = 1; i <= count; i += 1) {
      const port = service.runtime?.http?.port;
      replicas.push({
        container: `${stems.get(service.name)}-${i}`,
        service: service.name,
        replica: i,
        ...(port !== undefined ? { http: { port, ...(i === 1 ? { published: port } : {}) } } : {}),
      });
    }
  }
  const natsUrl = 'nats://nats:4222';
  const lines = [
    `# Deploy plan of app ${q(app)}, written by \`snapshot plan\` (membrane-snapshot ${libraryVersion}).`,
    '# Push the snapshot first: snapshot push <snapshot-dir> --nats nats://localhost:4222 --app ' + app,
    'services:',
    '  nats:',
    `    image: ${q(NATS_IMAGE)}`,
    '    command: ["-js", "-sd", "/data"]',
    '    ports: ["4222:4222"]',
    '    volumes: ["nats-data:/data"]',
  ];
  for (const r of replicas) {
    const command = ['npx', '--yes', `membrane-snapshot@${libraryVersion}`, 'restore', `${natsUrl}/${app}`, '--service', r.service, '--nats', natsUrl, '--http-host', '0.0.0.0'];
    lines.push(
      `  ${r.container}:`,
      `    image: ${q(`\${MEMBRANE_SNAPSHOT_IMAGE:-${NODE_IMAGE}}`)}`,
      `    command: [${command.map(q).join(', ')}]`,
      '    depends_on: ["nats"]',
      '    restart: "on-failure"',
      '    stop_signal: "SIGTERM"',
    );
    if (r.http?.published !== undefined) lines.push(`    ports: [${q(`${r.http.published}:${r.http.port}`)}]`);
    else if (r.http) lines.push(`    expose: [${q(String(r.http.port))}]`);
  }
  lines.push('volumes:', '  nats-data: {}');
  const summary = [
    `app ${app}: ${Object.keys(manifest.services).length} services, ${replicas.length} containers, plus a NATS server with JetStream`,
    ...Object.values(manifest.services).map(s => {
      const n = s.runtime?.replicas ?? 1;
      const http = s.runtime?.http ? `, HTTP on port ${s.runtime.http.port}` : '';
      return `  ${s.name}: ${n} replica${n === 1 ? '' : 's'}${http}${s.parent ? ` (imported by ${s.parent})` : ''}${s.runtime ? '' : ' (no declaration: defaults)'}`;
    }),
    '',
    'Run it:',
    '  docker compose up -d nats',
    `  snapshot push <snapshot-dir> --nats nats://localhost:4222 --app ${app}`,
    '  docker compose up -d',
    ...(replicas.some(r => r.http && r.http.published === undefined) ? ['', 'Only the first replica of an HTTP service publishes its port; put a load balancer in front of the others.'] : []),
  ].join('\n');
  return { app, replicas, compose: `${lines.join('\n')}\n`, summary: `${summary}\n` };
};

/** Write `compose.yaml` and `plan.txt` into `outDir` (created if absent). */
export const writePlan = (plan: Plan, outDir: string): { compose: string; summary: string } => {
  fs.mkdirSync(outDir, { recursive: true });
  const compose = path.join(outDir, 'compose.yaml');
  const summary = path.join(outDir, 'plan.txt');
  fs.writeFileSync(compose, plan.compose);
  fs.writeFileSync(summary, plan.summary);
  return { compose, summary };
};
