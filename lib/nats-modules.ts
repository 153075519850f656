/**
 * The NATS client (@nats-io/transport-node, @nats-io/obj) is an optional
 * dependency: its packages declare Node >= 22 although they run on Node 20,
 * so an `npm install --engine-strict` on Node 20 skips them, and only the
 * NATS commands and options need them. Loading a module that needs them goes
 * through here, so that their absence is a clear USAGE error.
 */
import { SnapshotError } from '../replay-log/errors.js';

/** Import a module of ours that needs the NATS client. Throws USAGE when the client is not installed. */
export const withNats = async <T>(load: () => Promise<T>): Promise<T> => {
  try {
    return await load();
  } catch (error) {
    if ((error as { code?: unknown })?.code === 'ERR_MODULE_NOT_FOUND' && /@nats-io\//.test(String((error as Error).message))) {
      throw new SnapshotError(
        'USAGE',
        'NATS needs the optional packages @nats-io/transport-node and @nats-io/obj, which are not installed here (npm skips them under --engine-strict on Node 20). Install them: npm install @nats-io/transport-node @nats-io/obj',
        { cause: error },
      );
    }
    throw error;
  }
};
