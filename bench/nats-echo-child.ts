/**
 * Bare NATS request/reply responder for bench/nats.ts: answers every
 * request on argv[3] with the bytes it received, no decoding. Prints
 * "ready" once subscribed; exits on SIGTERM.
 */
import { connect } from '@nats-io/transport-node';

const [server, subject] = process.argv.slice(2);
const nc = await connect({ servers: server });
nc.subscribe(subject, { callback: (_error, msg) => void msg.respond(msg.data) });
await nc.flush();
process.stdout.write('ready\n');
process.once('SIGTERM', () => void nc.drain().then(() => process.exit(0)));
