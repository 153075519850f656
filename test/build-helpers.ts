/**
 * Helpers of the build tests: build the misc fixture's build-modes.mjs in a
 * chosen MISC_MODE, and fingerprint a snapshot directory to prove a failed
 * build left it exactly as it was.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fixture, moveToTarget, snapshot, type Run } from './helpers.js';

export const misc = fixture('misc');

/** Every file under `dir` with the sha256 of its content, its mode and mtime (ms), and the directory's inode and mode. */
export const fingerprint = (dir: string): { inode: number; mode: string; files: Record<string, string> } => {
  const files: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else {
        const stats = fs.statSync(full);
        files[path.relative(dir, full)] = `${createHash('sha256').update(fs.readFileSync(full)).digest('hex')} ${stats.mode.toString(8)} ${stats.mtimeMs}`;
      }
    }
  };
  walk(dir);
  return { inode: fs.statSync(dir).ino, mode: fs.statSync(dir).mode.toString(8), files };
};

export const build = (out: string, mode: string): Promise<Run> => snapshot(['build', 'build-modes.mjs', '--out', out], { cwd: misc, env: { MISC_MODE: mode } });

/** Siblings of `out` a build may leave behind: only `<out>.partial` is allowed. */
export const leftovers = (out: string): string[] =>
  fs.readdirSync(path.dirname(out)).filter(name => name.startsWith(`${path.basename(out)}.`) && name !== `${path.basename(out)}.partial`);

export const goodKeep = async (work: string, name: string): Promise<{ out: string; before: ReturnType<typeof fingerprint> }> => {
  const out = path.join(work, name);
  const good = await build(out, 'good');
  if (good.code !== 0) throw new Error(good.stderr);
  return { out, before: fingerprint(out) };
};

/** The snapshot restores, and the counter goes on from `bumps` recorded bumps. */
export const restoresCounter = async (out: string, bumps = 1): Promise<boolean> => {
  const run = await snapshot(['restore', moveToTarget(out), '--call', 'counter.bump']);
  return run.code === 0 && run.stdout.includes(`"count":${bumps + 1}`);
};
