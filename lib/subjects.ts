/**
 * NATS subject tokens, without the NATS client (an optional dependency,
 * lib/nats-modules.ts): `snapshot plan` names containers with them on a
 * host that has no NATS client installed.
 */

/** One subject token: letters, digits, `-` and `_` kept, anything else escaped as `=XX` (its UTF-8 bytes). */
export const subjectToken = (name: string): string =>
  name.replace(/[^A-Za-z0-9_-]/g, c => [...Buffer.from(c, 'utf8')].map(b => `=${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
