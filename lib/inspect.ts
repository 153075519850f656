/** `snapshot inspect`: a log's timeline, or a snapshot's services. */
import fs from 'node:fs';
import path from 'node:path';
import { LogReader, dumpLog } from '../replay-log/index.js';
import { readManifest } from './manifest.js';

const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;

export const inspectPath = (target: string): string => {
  const stat = fs.statSync(target);
  if (stat.isFile()) return dumpLog(LogReader.open(fs.readFileSync(target), target, { allowUnsealed: true }));
  const manifest = readManifest(target);
  const lines = [`snapshot ${path.resolve(target)}`, `  built ${manifest.createdAt} by membrane-snapshot ${manifest.libraryVersion}`, '  services:'];
  for (const s of Object.values(manifest.services)) {
    lines.push(`    ${s.name}`);
    lines.push(`      entry    ${s.entry}`);
    lines.push(`      archive  ${s.archive}  ${kib(s.archiveBytes)}  sha256 ${s.archiveSha256.slice(0, 16)}…`);
    lines.push(`      log      ${s.log}  ${kib(s.logBytes)}  ${s.events} events  sha256 ${s.logSha256.slice(0, 16)}…`);
    const granted = Object.keys(s.granted ?? {});
    if (granted.length) lines.push(`      granted  ${granted.join(', ')}`);
    if (s.parent) lines.push(`      parent   ${s.parent} (imported it at build time)`);
    const held = new Map<string, number>();
    for (const ref of s.references ?? []) held.set(ref.service, (held.get(ref.service) ?? 0) + 1);
    if (held.size) lines.push(`      holds    ${[...held].map(([name, n]) => `${name} (${n} reference${n === 1 ? '' : 's'})`).join(', ')}`);
    if (s.pendingTimers) lines.push(`      timers   ${s.pendingTimers} pending (re-armed when live)`);
    lines.push(`      built in ${s.buildMs} ms`);
  }
  const edges: string[] = [];
  for (const s of Object.values(manifest.services)) {
    if (s.parent) edges.push(`    ${s.parent} ─imports→ ${s.name}`);
    for (const target of new Set((s.references ?? []).map(r => r.service))) edges.push(`    ${s.name} ─calls→ ${target}`);
  }
  if (edges.length) lines.push('  graph:', ...edges);
  return lines.join('\n');
};
