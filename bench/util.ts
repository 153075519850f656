/**
 * Small helpers for the benchmark: timing, statistics, formatting, child
 * processes, and the environment line.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = fileURLToPath(new URL('..', import.meta.url));
export const benchDir = path.join(repo, 'bench');
/** The CLI as users run it: the package's bin (dist/lib/cli.cjs). */
export const cliPath = path.join(repo, 'dist', 'lib', 'cli.cjs');

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** "1,234,567" (by hand: SES lockdown tames toLocaleString into toString). */
export const int = (n: number): string => {
  const digits = String(Math.abs(Math.round(n)));
  const groups: string[] = [];
  for (let end = digits.length; end > 0; end -= 3) groups.unshift(digits.slice(Math.max(0, end - 3), end));
  return `${n < 0 ? '-' : ''}${groups.join(',')}`;
};
/** "12.3 ms" */
export const ms = (n: number): string => `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms`;
/** "4.21 M/s" style rates. */
export const rate = (perSecond: number): string =>
  perSecond >= 1e6 ? `${(perSecond / 1e6).toFixed(2)} M/s` : perSecond >= 1e3 ? `${(perSecond / 1e3).toFixed(1)} k/s` : `${perSecond.toFixed(0)} /s`;
export const ratio = (n: number): string => `${n.toFixed(2)}x`;
export const pct = (n: number): string => `${n >= 0 ? '+' : ''}${(n * 100).toFixed(1)}%`;
export const goal = (met: boolean): string => (met ? 'goal met' : 'goal MISSED');

/** "0.52 0.61 0.70": the 1, 5 and 15 minute load averages (other work on the machine skews every figure). */
export const loadAverage = (): string => os.loadavg().map(n => n.toFixed(2)).join(' ');

/**
 * Format rows (the first one a header) as aligned columns: a column whose
 * cells below the header are all figures ("1,234", "12.3 ms", "+4.5%", "-")
 * is right-aligned, any other column left-aligned.
 */
export const table = (rows: readonly (readonly string[])[], indent = '    '): string => {
  const widths: number[] = [];
  const numeric: boolean[] = [];
  rows.forEach((row, r) =>
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
      if (r > 0) numeric[i] = (numeric[i] ?? true) && /^([-+]?[\d.,]+|-)( |x|%|$)/.test(cell);
    }),
  );
  return rows.map(row => indent + row.map((cell, i) => (numeric[i] && i > 0 ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  ').trimEnd()).join('\n');
};

export interface ChildResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run `node <args>` in the repository, collecting output. NODE_OPTIONS is cleared so children start plain. */
export const runNode = (args: readonly string[], env: Record<string, string> = {}): Promise<ChildResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: repo, env: { ...process.env, NODE_OPTIONS: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', code => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });

/** Like runNode, but a non-zero exit is an error carrying the child's output. */
export const runNodeOk = async (args: readonly string[], env?: Record<string, string>): Promise<ChildResult> => {
  const result = await runNode(args, env);
  if (result.code !== 0) throw new Error(`node ${args.join(' ')} exited ${String(result.code)}\n${result.stdout}\n${result.stderr}`);
  return result;
};

/** The last line of a child's stdout, parsed as JSON. */
export const lastJson = <T>(result: ChildResult): T => JSON.parse(result.stdout.trim().split('\n').pop() ?? 'null') as T;

/** A fresh temporary directory, removed when the process exits. */
const tempDirs: string[] = [];
export const tempDir = (prefix: string): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `msnap-bench-${prefix}-`));
  if (tempDirs.length === 0) process.once('exit', () => tempDirs.forEach(d => fs.rmSync(d, { recursive: true, force: true })));
  tempDirs.push(dir);
  return dir;
};

/** Run a command in the repository; resolves to its exit code and output. */
const runTool = (command: string, args: readonly string[]): Promise<{ code: number | null; output: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', code => resolve({ code, output }));
  });

const restoreBundle = path.join(repo, 'dist', 'lib', 'restore-entry.bundle.cjs');
const restoreEntry = path.join(repo, 'dist', 'lib', 'restore-entry.js');

/**
 * dist/ must match the sources: the CLI children run it, and so do the
 * in-process figures. Rebuild (as `npm run build` does: tsc, then the
 * restore bundle) when any source is newer than its compiled file, or the
 * restore bundle is missing or older than the modules (the CLI would then
 * restore from the modules, not from what users run).
 */
export const ensureFreshDist = async (): Promise<string> => {
  const stale: string[] = [];
  for (const dir of ['lib', 'membrane', 'compartments', 'replay-log']) {
    for (const name of fs.readdirSync(path.join(repo, dir))) {
      if (!name.endsWith('.ts') || name.endsWith('.d.ts')) continue;
      const source = path.join(repo, dir, name);
      const compiled = path.join(repo, 'dist', dir, name.replace(/\.ts$/, '.js'));
      if (!fs.existsSync(compiled) || fs.statSync(compiled).mtimeMs < fs.statSync(source).mtimeMs) stale.push(`${dir}/${name}`);
    }
  }
  const notes: string[] = [];
  if (stale.length > 0) {
    const tsc = await runTool(path.join(repo, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json']);
    const which = `${stale.slice(0, 3).join(', ')}${stale.length > 3 ? ', ...' : ''}`;
    // tsc emits even when it reports type errors: measure what it emitted, but say so.
    if (tsc.code === 0) notes.push(`dist/ was stale (${which}): rebuilt with tsc`);
    else if (fs.existsSync(cliPath)) notes.push(`dist/ was stale (${which}): rebuilt, BUT tsc reported errors:\n${tsc.output.trim()}`);
    else throw new Error(`tsc failed and dist/ has no CLI:\n${tsc.output}`);
  }
  if (!fs.existsSync(restoreBundle) || fs.statSync(restoreBundle).mtimeMs < fs.statSync(restoreEntry).mtimeMs) {
    const bundled = await runTool(process.execPath, [path.join(repo, 'tools', 'bundle-restore.mjs')]);
    if (bundled.code !== 0) throw new Error(`the restore bundle could not be built:\n${bundled.output}`);
    notes.push('restore bundle rebuilt');
  }
  return notes.length > 0 ? notes.join('; ') : 'dist/ is up to date';
};
