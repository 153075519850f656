/**
 * Where the seal key comes from: a file named by `--seal-key` (or the
 * `sealKeyFile` option), else the `SNAPSHOT_SEAL_KEY` environment variable.
 * Either holds 32 random bytes in base64 (`openssl rand -base64 32`).
 */
import fs from 'node:fs';
import { SnapshotError, makeSealer, parseSealKey, type SealKey } from '../replay-log/index.js';
import { keepFromServices } from '../compartments/reach.js';

export const SEAL_KEY_ENV = 'SNAPSHOT_SEAL_KEY';

/**
 * The sealer for the configured seal key, or undefined when none is set.
 * Throws SEAL_KEY_INVALID for a key that is not 32 bytes of base64, and
 * SEAL_KEY_MISSING for a key file that cannot be read.
 */
export const loadSealer = (file: string | undefined, env: NodeJS.ProcessEnv = process.env): SealKey | undefined => {
  if (file !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (cause) {
      throw new SnapshotError('SEAL_KEY_MISSING', `the seal key file ${file} cannot be read: ${(cause as Error).message}.`, { cause, details: { file } });
    }
    keepFromServices(file);
    return makeSealer(parseSealKey(text, `the seal key file ${file}`));
  }
  const text = env[SEAL_KEY_ENV];
  if (text === undefined || text === '') return undefined;
  return makeSealer(parseSealKey(text, `the ${SEAL_KEY_ENV} environment variable`));
};
