/** CRC-32 of a frame: its type byte, then its payload (zlib.crc32, Node >= 20.15). */
import zlib from 'node:zlib';

const nativeCrc32 = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
if (typeof nativeCrc32 !== 'function') {
  throw new Error('membrane-snapshot needs Node.js >= 20.15 (zlib.crc32)');
}
/** CRC-32 of `data`, continuing from `value` (the CRC of what came before it). */
export const crc32: (data: Uint8Array, value?: number) => number = nativeCrc32;
const typeCrc = new Map<number, number>();

export const frameCrc = (type: number, payload: Uint8Array): number => {
  let seed = typeCrc.get(type);
  if (seed === undefined) {
    seed = crc32(Uint8Array.of(type));
    typeCrc.set(type, seed);
  }
  return crc32(payload, seed);
};
