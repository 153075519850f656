/**
 * `FormData` inside a service, and the multipart bodies made of it.
 *
 * Node's FormData is undici's (lib/web/fetch/formdata.js, Node 20.20),
 * which a service cannot share: a Blob appended without being a File
 * becomes a File whose `lastModified` is the host's clock, and a body made
 * of a form draws its boundary from the host's randomness. Each service gets
 * its own class (makeFormData), written after undici's: the same methods,
 * argument checks, messages, iteration (a `FormData Iterator`), printing and
 * multipart encoding, with the service's File (its recorded clock) and the
 * service's recorded `crypto.randomInt` for the boundary, as undici draws it.
 *
 * The Body mixin's `formData()` (fetch-body.ts) parses with Node's own
 * parser and makes the result of the service's classes (formFromBody).
 */
import { Blob, File } from 'node:buffer';
import { createHash } from 'node:crypto';
import { formatWithOptions } from 'node:util';
import { clonedAsHostClass } from './structured-clone.js';
import { likeHost } from './host-shape.js';

/** The classes and randomness of one service's forms. */
export interface FormKit {
  readonly FormData: typeof FormData;
  readonly File: typeof File;
  /** undici's boundary: `----formdata-undici-0` and 11 random digits, drawn from the service's recorded crypto. */
  readonly boundary: () => string;
}

/** The kit of each form a service made (its FormData), so a body made of it knows the service. */
const kits = new WeakMap<object, FormKit>();

// structuredClone treats a service's FormData (each service has its own class) as Node's clone treats Node's
// (refused since Node 22): a form is one its constructor registered.
clonedAsHostClass({ is: value => kits.has(value), sample: () => new (globalThis as unknown as { FormData: new () => object }).FormData() });

/** The kit of a form made by a service's FormData, or undefined. */
export const kitOf = (form: unknown): FormKit | undefined => (typeof form === 'object' && form !== null ? kits.get(form) : undefined);

type BlobLike = Blob & { name?: string };

/** undici's isBlobLike: a Blob, or an object tagged Blob or File with stream() or arrayBuffer() (fetch-blob's). */
export const isBlobLike = (value: unknown): value is BlobLike => {
  if (value instanceof Blob) return true;
  if (typeof value !== 'object' || value === null) return false;
  const tag = (value as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag];
  const { stream, arrayBuffer } = value as { stream?: unknown; arrayBuffer?: unknown };
  return (tag === 'Blob' || tag === 'File') && (typeof stream === 'function' || typeof arrayBuffer === 'function');
};

/** undici's isFileLike. */
const isFileLike = (value: unknown): boolean => value instanceof File || (isBlobLike(value) && (value as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag] === 'File');

/** undici's isFormDataLike: what fetch and Response take as a form (FormData, or a package's look-alike). */
export const isFormDataLike = (value: unknown): value is Iterable<[string, string | BlobLike]> => {
  if (typeof value !== 'object' || value === null) return false;
  const form = value as Record<string | symbol, unknown>;
  return ['append', 'delete', 'get', 'getAll', 'has', 'set'].every(name => typeof form[name] === 'function') && form[Symbol.toStringTag] === 'FormData';
};

/** WebIDL's USVString, as undici converts it (a Symbol: V8's TypeError). */
const usv = (value: unknown): string => (`${value as string}` as string & { toWellFormed(): string }).toWellFormed();

const illegalInvocation = (): TypeError => Object.assign(new TypeError('Illegal invocation'), { code: 'ERR_INVALID_THIS' });

/** undici's webidl.argumentLengthCheck. */
const argumentsRequired = (length: number, min: number, prefix: string): void => {
  if (length < min) throw new TypeError(`${prefix}: ${min} argument${min !== 1 ? 's' : ''} required, but${length ? ' only' : ''} ${length} found.`);
};

interface Entry {
  readonly name: string;
  readonly value: string | BlobLike;
}

/**
 * One service's FormData, on its File (`File` made per service, web.ts
 * clockedWeb) and its recorded `randomInt(min, max)`.
 */
export const makeFormData = (GuestFile: typeof File, randomInt: (min: number, max: number) => number): FormKit => {
  /** undici's makeEntry: a Blob becomes a File named 'blob' (its lastModified the service's clock), a filename names a copy. */
  const makeEntry = (name: string, value: string | BlobLike, filename: string | undefined): Entry => {
    if (typeof value === 'string') return { name, value };
    let file = value;
    if (!isFileLike(file) && file instanceof Blob) file = new GuestFile([file], 'blob', { type: file.type });
    if (filename !== undefined && file instanceof File) file = new GuestFile([file], filename, { type: file.type, lastModified: file.lastModified });
    return { name, value: file };
  };

  /** The entry append() and set() make of their arguments, with undici's checks and messages. */
  const argumentEntry = (method: 'append' | 'set', args: ArrayLike<unknown>): Entry => {
    argumentsRequired(args.length, 2, `FormData.${method}`);
    const [name, value, filename] = Array.from(args);
    if (args.length === 3 && !isBlobLike(value)) throw new TypeError(`Failed to execute '${method}' on 'FormData': parameter 2 is not of type 'Blob'`);
    const key = usv(name);
    return makeEntry(key, isBlobLike(value) ? value : usv(value), args.length === 3 ? usv(filename) : undefined);
  };

  let entriesOf: (form: FormData) => Entry[];
  let replaceEntries: (form: FormData, entries: Entry[]) => void;

  class FormDataIterator {
    readonly #form: FormData;
    readonly #kind: 'key' | 'value' | 'key+value';
    #index = 0;
    constructor(form: FormData, kind: 'key' | 'value' | 'key+value') {
      this.#form = form;
      this.#kind = kind;
    }
    next(): IteratorResult<unknown> {
      if (typeof this !== 'object' || this === null || !(#form in this)) throw new TypeError("'next' called on an object that does not implement interface FormData Iterator.");
      const entries = entriesOf(this.#form);
      if (this.#index >= entries.length) return { value: undefined, done: true };
      const { name, value } = entries[this.#index];
      this.#index += 1;
      return { value: this.#kind === 'key' ? name : this.#kind === 'value' ? value : [name, value], done: false };
    }
  }
  // As undici's: no constructor, on %IteratorPrototype%, tagged.
  delete (FormDataIterator.prototype as { constructor?: unknown }).constructor;
  Object.setPrototypeOf(FormDataIterator.prototype, Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())) as object);
  Object.defineProperties(FormDataIterator.prototype, {
    [Symbol.toStringTag]: { value: 'FormData Iterator', writable: false, enumerable: false, configurable: true },
    next: { writable: true, enumerable: true, configurable: true },
  });

  // Named as undici's class is in Node's bundle (`_FormData`, renamed FormData), so that calling it
  // without new throws V8's message with the same name.
  class _FormData {
    #entries: Entry[] = [];

    static {
      entriesOf = form => {
        if (!(form instanceof _FormData)) throw illegalInvocation();
        return form.#entries;
      };
      replaceEntries = (form, entries) => {
        (form as unknown as _FormData).#entries = entries;
      };
    }

    constructor(form?: unknown) {
      if (form !== undefined) throw new TypeError('FormData constructor: Argument 1 could not be converted to: undefined.');
      kits.set(this, kit);
    }

    // Two named parameters, as undici's (the length is 2); the arguments are read as undici reads them.
    append(_name: unknown, _value: unknown, _filename: unknown = undefined): void {
      const entries = entriesOf(this as unknown as FormData);
      entries.push(argumentEntry('append', arguments));
    }

    delete(name: unknown): void {
      const entries = entriesOf(this as unknown as FormData);
      argumentsRequired(arguments.length, 1, 'FormData.delete');
      const key = usv(name);
      replaceEntries(this as unknown as FormData, entries.filter(entry => entry.name !== key));
    }

    get(name: unknown): string | BlobLike | null {
      const entries = entriesOf(this as unknown as FormData);
      argumentsRequired(arguments.length, 1, 'FormData.get');
      const key = usv(name);
      return entries.find(entry => entry.name === key)?.value ?? null;
    }

    getAll(name: unknown): Array<string | BlobLike> {
      const entries = entriesOf(this as unknown as FormData);
      argumentsRequired(arguments.length, 1, 'FormData.getAll');
      const key = usv(name);
      return entries.filter(entry => entry.name === key).map(entry => entry.value);
    }

    has(name: unknown): boolean {
      const entries = entriesOf(this as unknown as FormData);
      argumentsRequired(arguments.length, 1, 'FormData.has');
      const key = usv(name);
      return entries.some(entry => entry.name === key);
    }

    // Two named parameters, as undici's (the length is 2); the arguments are read as undici reads them.
    set(_name: unknown, _value: unknown, _filename: unknown = undefined): void {
      const entries = entriesOf(this as unknown as FormData);
      const entry = argumentEntry('set', arguments);
      const at = entries.findIndex(e => e.name === entry.name);
      if (at === -1) entries.push(entry);
      else replaceEntries(this as unknown as FormData, [...entries.slice(0, at), entry, ...entries.slice(at + 1).filter(e => e.name !== entry.name)]);
    }

    /** As undici's: `FormData { name: value, repeated: [a, b] }`. */
    [Symbol.for('nodejs.util.inspect.custom')](depth: number, options: { depth?: number; colors?: boolean }): string {
      const state: Record<string, unknown> = Object.create(null);
      for (const { name, value } of entriesOf(this as unknown as FormData)) {
        const held = state[name];
        if (held) {
          if (Array.isArray(held)) held.push(value);
          else state[name] = [held, value];
        } else state[name] = value;
      }
      options.depth ??= depth;
      options.colors ??= true;
      const output = formatWithOptions(options, state);
      return `FormData ${output.slice(output.indexOf(']') + 2)}`;
    }
  }

  // undici's iteratorMixin: keys, values, entries, forEach (enumerable), and entries as the iterator.
  const iterate = (kind: 'key' | 'value' | 'key+value') =>
    function (this: unknown) {
      if (!(this instanceof _FormData)) throw illegalInvocation();
      return new FormDataIterator(this as unknown as FormData, kind);
    };
  const methods = {
    keys: Object.defineProperty(iterate('key'), 'name', { value: 'keys' }),
    values: Object.defineProperty(iterate('value'), 'name', { value: 'values' }),
    entries: Object.defineProperty(iterate('key+value'), 'name', { value: 'entries' }),
    // undici's default receiver is its global object: here none (this module's would be the host's).
    forEach: function forEach(this: unknown, callbackfn: unknown, thisArg: unknown = undefined) {
      if (!(this instanceof _FormData)) throw illegalInvocation();
      argumentsRequired(arguments.length, 1, 'FormData.forEach');
      if (typeof callbackfn !== 'function') throw new TypeError("Failed to execute 'forEach' on 'FormData': parameter 1 is not of type 'Function'.");
      for (const { name, value } of [...entriesOf(this as unknown as FormData)]) Reflect.apply(callbackfn, thisArg, [value, name, this]);
    },
  };
  const proto = _FormData.prototype;
  for (const [name, value] of Object.entries(methods)) Object.defineProperty(proto, name, { value, writable: true, enumerable: true, configurable: true });
  Object.defineProperty(proto, Symbol.iterator, { value: methods.entries, writable: true, enumerable: false, configurable: true });
  for (const name of ['append', 'delete', 'get', 'getAll', 'has', 'set']) Object.defineProperty(proto, name, { enumerable: true });
  Object.defineProperty(proto, Symbol.toStringTag, { value: 'FormData', writable: false, enumerable: false, configurable: true });
  Object.defineProperty(_FormData, 'name', { value: 'FormData' });
  // The length of the host's FormData where it is loaded (Node 24's undici declares `constructor (form = undefined)`:
  // 0), read by descriptor: where the global is still Node's lazy accessor (Node 20), reading it would load undici,
  // and the class keeps the length of that line's (`constructor (form)`: 1).
  const hostFormData = Object.getOwnPropertyDescriptor(globalThis, 'FormData');
  if (hostFormData && 'value' in hostFormData) likeHost(_FormData, hostFormData.value);
  harden(FormDataIterator);
  harden(_FormData);

  const kit: FormKit = {
    FormData: _FormData as unknown as typeof FormData,
    File: GuestFile,
    boundary: () => `----formdata-undici-0${`${randomInt(0, 1e11)}`.padStart(11, '0')}`,
  };
  return kit;
};

/** A body's parts: bytes, and Blobs read when the body is (undici streams them). */
export type BodyPart = Uint8Array | BlobLike;

/**
 * A form as undici's extractBody encodes it (multipart/form-data, RFC 7578):
 * its parts and Content-Type. The boundary is the form's service's
 * (recorded); a look-alike FormData from a package has no service, and its
 * boundary is made from a SHA-256 of its entries (names, strings, file
 * names, types and sizes), so the build and every replay send the same bytes.
 */
export const formParts = (form: Iterable<[string, string | BlobLike]>): { parts: BodyPart[]; type: string } => {
  const entries = [...form];
  const boundary = kitOf(form)?.boundary() ?? contentBoundary(entries);
  const prefix = `--${boundary}\r\nContent-Disposition: form-data`;
  const escape = (text: string) => text.replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/"/g, '%22');
  const normalizeLinefeeds = (text: string) => text.replace(/\r?\n|\r/g, '\r\n');
  const encoder = new TextEncoder();
  const rn = new Uint8Array([13, 10]);
  const parts: BodyPart[] = [];
  for (const [name, value] of entries) {
    if (typeof value === 'string') parts.push(encoder.encode(`${prefix}; name="${escape(normalizeLinefeeds(name))}"\r\n\r\n${normalizeLinefeeds(value)}\r\n`));
    else {
      const head = `${prefix}; name="${escape(normalizeLinefeeds(name))}"${value.name ? `; filename="${escape(value.name)}"` : ''}\r\nContent-Type: ${value.type || 'application/octet-stream'}\r\n\r\n`;
      parts.push(encoder.encode(head), value, rn);
    }
  }
  parts.push(encoder.encode(`--${boundary}--\r\n`));
  return { parts, type: `multipart/form-data; boundary=${boundary}` };
};

const contentBoundary = (entries: ReadonlyArray<[string, string | BlobLike]>): string => {
  const hash = createHash('sha256');
  for (const [name, value] of entries) hash.update(JSON.stringify([name, typeof value === 'string' ? value : [value.name ?? null, value.type, value.size]]));
  const digits = BigInt(`0x${hash.digest('hex').slice(0, 16)}`) % 10n ** 11n;
  return `----formdata-undici-0${digits.toString().padStart(11, '0')}`;
};

/** A body's parts, read in order: the bytes as they are, each Blob's stream (as undici reads them). */
export async function* readParts(parts: readonly BodyPart[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) {
    if (part instanceof Uint8Array) yield part;
    else if (typeof part.stream === 'function') yield* part.stream() as unknown as AsyncIterable<Uint8Array>;
    else yield new Uint8Array(await part.arrayBuffer());
  }
}

/**
 * What `formData()` answers for a body (the Fetch standard's Body mixin):
 * Node's own parser (a Response of the bytes and the Content-Type) reads
 * it, and the entries become the service's: its FormData, its File (a
 * file's lastModified is the service's clock, as it is Node's clock when
 * Node parses). Node's TypeError for another Content-Type or a bad body.
 */
export const formFromBody = async (bytes: Uint8Array, contentType: string | null, kit: FormKit): Promise<FormData> => {
  // Read here, not at load: Node loads its fetch (undici) on the first read of the global.
  const HostResponse = (globalThis as { Response: typeof Response }).Response;
  const parsed = await new HostResponse(bytes, { headers: contentType === null ? [] : [['content-type', contentType]] }).formData();
  const form = new kit.FormData();
  for (const [name, value] of parsed) {
    if (typeof value === 'string') form.append(name, value);
    else form.append(name, new kit.File([value], value.name, { type: value.type }));
  }
  return form;
};
