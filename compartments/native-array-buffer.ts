/**
 * ArrayBuffer.prototype as this Node made it, read before SES loads:
 * lockdown.ts imports this module ahead of `ses`, whose lockdown module
 * installs @endo/immutable-arraybuffer's shim. That shim replaces the
 * prototype's methods with its own and adds members Node does not have
 * (`immutable`, `sliceToImmutable`, `transferToImmutable`, and on Node 20
 * `transfer`, `transferToFixedLength` and `detached`, whose `transfer`
 * always throws and whose `detached` answers false for a detached buffer).
 * Services share the prototype: feature tests took the broken path there
 * (web-streams-polyfill's byte streams threw; found by the fidelity hunt).
 * This module keeps the shim out, and restoreNativeArrayBuffer removes what
 * else SES added (its own `transfer` on Node 20) before the intrinsics are
 * hardened. Nothing of this library or SES uses the shim's members.
 */
const native = Object.getOwnPropertyDescriptors(ArrayBuffer.prototype);

/**
 * The shim installs nothing where `sliceToImmutable` is already there (its
 * detect-then-skip policy), and what it installs cannot be removed (its
 * members are not configurable): a placeholder keeps it out, removed by
 * restoreNativeArrayBuffer.
 */
const PLACEHOLDER = 'sliceToImmutable';
if (!(PLACEHOLDER in ArrayBuffer.prototype)) {
  Object.defineProperty(ArrayBuffer.prototype, PLACEHOLDER, { value: undefined, writable: true, enumerable: false, configurable: true });
}

/**
 * Make ArrayBuffer.prototype Node's own again: the members Node has, as
 * Node made them, and none other. Call between SES's repairIntrinsics()
 * and hardenIntrinsics(). Never throws on a prototype already frozen
 * (someone locked the realm down before us): it is left as it is.
 */
export const restoreNativeArrayBuffer = (): void => {
  const proto = ArrayBuffer.prototype as unknown as Record<PropertyKey, unknown>;
  if (Object.isFrozen(proto)) return;
  for (const key of Reflect.ownKeys(proto)) {
    if (Object.prototype.hasOwnProperty.call(native, key)) continue;
    // A member another shim made permanent stays (no such shim is known): Node's are still put back below.
    if (Object.getOwnPropertyDescriptor(proto, key)?.configurable) delete proto[key as string];
  }
  for (const key of Reflect.ownKeys(native)) Object.defineProperty(proto, key, (native as Record<PropertyKey, PropertyDescriptor>)[key as string]);
};
