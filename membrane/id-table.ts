/**
 * Records by numeric id, for ids handed out in increasing order and mostly
 * released in about that order: a call's answer, an async syscall's
 * promise. Every live call across a membrane adds one and removes it, and a
 * V8 Map that is set and emptied again rehashes each time (~0.2 us a set
 * and delete under lockdown, where an array slot costs a few ns).
 *
 * The records sit in an array from the oldest id still held (`base`); ids
 * released at its front are shifted off. An id far ahead of the oldest one
 * (one record held for long while thousands pass) or behind it goes to a
 * Map instead, so the array stays short whatever happens.
 */

/** Slots the array may span ahead of the oldest held id before later ids go to the Map. */
const SPAN = 1024;

export class IdTable<T> {
  /** The id of slots[0]. */
  #base = 0;
  readonly #slots: Array<T | undefined> = [];
  readonly #spill = new Map<number, T>();

  get(id: number): T | undefined {
    const at = id - this.#base;
    const value = at >= 0 && at < this.#slots.length ? this.#slots[at] : undefined;
    return value === undefined && this.#spill.size > 0 ? this.#spill.get(id) : value;
  }

  /** Hold `value` under `id`, which holds nothing. */
  set(id: number, value: T): void {
    const slots = this.#slots;
    if (slots.length === 0) this.#base = id;
    const at = id - this.#base;
    if (at >= 0 && at < slots.length) {
      slots[at] = value;
      return;
    }
    if (at >= 0 && at < SPAN) {
      while (slots.length < at) slots.push(undefined);
      slots.push(value);
      return;
    }
    this.#spill.set(id, value);
  }

  delete(id: number): void {
    const slots = this.#slots;
    const at = id - this.#base;
    if (at >= 0 && at < slots.length && slots[at] !== undefined) {
      slots[at] = undefined;
      if (at === 0) {
        while (slots.length > 0 && slots[0] === undefined) {
          slots.shift();
          this.#base += 1;
        }
      }
      return;
    }
    if (this.#spill.size > 0) this.#spill.delete(id);
  }

  /** Every record held: the array's by id, then the Map's by id. */
  *entries(): Generator<[number, T]> {
    const base = this.#base;
    const slots = this.#slots.slice();
    for (let at = 0; at < slots.length; at += 1) {
      const value = slots[at];
      if (value !== undefined) yield [base + at, value];
    }
    yield* [...this.#spill].sort((a, b) => a[0] - b[0]);
  }

  clear(): void {
    this.#slots.length = 0;
    this.#spill.clear();
  }
}
