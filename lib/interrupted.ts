/**
 * What an interrupted build leaves beside its snapshot directory, and how
 * the next build (or the CLI that killed it) tidies it. No SES, no library
 * module: the CLI's parent process uses it too.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Whether process `pid` is still running. */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Tidy what an interrupted build (killed between its renames, or while
 * writing) left beside `outDir`: a previous snapshot renamed aside comes
 * back if `outDir` is missing; work directories of dead builds are removed.
 */
export const recoverInterrupted = (outDir: string): void => {
  const parent = path.dirname(outDir);
  const base = path.basename(outDir);
  let names: string[];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const match = /^(.*)\.(building|old)-(\d+)$/.exec(name);
    if (!match || match[1] !== base || alive(Number(match[3]))) continue;
    const full = path.join(parent, name);
    if (match[2] === 'old' && !fs.existsSync(outDir) && fs.existsSync(path.join(full, 'manifest.json'))) fs.renameSync(full, outDir);
    else fs.rmSync(full, { recursive: true, force: true });
  }
};
