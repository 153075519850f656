/**
 * The NATS client (@nats-io/transport-node, @nats-io/obj) is an optional
 * dependency: one of its packages (@nats-io/nuid) declares Node >= 22
 * although it runs on Node 20, so npm skips the client when it installs
 * this package on Node 20, and only the NATS commands and options need it.
 * Loading a module that needs it goes through here, so that its absence is
 * a clear USAGE error saying what to install.
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
        'NATS needs the optional packages @nats-io/transport-node and @nats-io/obj, which are not installed here (npm leaves them out on Node 20: a package of theirs declares Node >= 22, though they run on 20). Install them beside this package: npm install @nats-io/transport-node @nats-io/obj',
        { cause: error },
      );
    }
    throw error;
  }
};
