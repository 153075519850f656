/**
 * `RegExp.prototype[Symbol.split]` and `[Symbol.replace]` without V8's
 * slow paths.
 *
 * V8 runs these quickly only while the RegExp species protector holds and
 * %RegExp.prototype% is untouched. SES's lockdown replaces
 * `RegExp.prototype.constructor` (its tamed RegExp, without the legacy
 * statics `RegExp.$1`...) and freezes the prototype, so every split and
 * replace by a regular expression takes V8's generic path, which follows
 * the spec's algorithms step by step from C++:
 *
 * - split (ECMA-262 22.2.6.14) runs a sticky copy of the expression at
 *   every position of the string in turn, one `exec` call per character:
 *   splitting 80 KB of CSV by `/\r?\n/` and each line by `/,/` took 101 ms
 *   locked down, 6.8 ms in plain Node (Node 20.20).
 * - replace (22.2.6.11) costs about 1 us a match more: escaping HTML with
 *   `s.replace(/[&<>"']/g, fn)` ran 5 times slower than in Node.
 *
 * These compute the same values in JavaScript, calling V8's own `exec`
 * directly (its fast path, for a regular expression made by a literal or
 * by V8's constructor): split with a global copy of the expression that
 * searches from each position, since the first position where the sticky
 * copy would match is where the search finds its match (the same match:
 * the same pattern, stepping positions the same way, by code point under
 * `u` and `v`); replace with the spec's own steps. They run only where that
 * is unobservable: `this` is an ordinary regular expression of this realm
 * (%RegExp.prototype% its prototype, frozen with everything the
 * algorithms read from it: `flags` and each flag, `exec`, `constructor`
 * and its species, `@@match`), with none of those as own properties, and
 * a `lastIndex` that is a number (the algorithms read and write it as the
 * spec does). Anything else (a subclass, a Proxy, an own `exec`, a limit
 * whose `valueOf` runs code) goes to V8's own method, with the arguments
 * already converted where the spec converts them first.
 *
 * What differs from Node: the methods' source text
 * (`String(RegExp.prototype[Symbol.split])`) is this module's, not
 * `[native code]`.
 */
const NativeRegExp = RegExp;
type Method = (this: unknown, ...args: unknown[]) => unknown;
const nativeSplit = RegExp.prototype[Symbol.split] as Method;
const nativeReplace = RegExp.prototype[Symbol.replace] as Method;
const nativeExec = RegExp.prototype.exec;
const { apply, getPrototypeOf, set } = Reflect;
const { hasOwn } = Object;
const { min } = Math;
const regExpPrototype = RegExp.prototype;
const getter = (name: string): ((this: unknown) => unknown) | undefined => Object.getOwnPropertyDescriptor(regExpPrototype, name)?.get;
const sourceOf = getter('source') as (this: unknown) => string;
const globalOf = getter('global') as (this: unknown) => boolean;
const stickyOf = getter('sticky') as (this: unknown) => boolean;
/** The flags that change what a search matches, and their getters (`unicodeSets` where V8 has the `v` flag). */
const matchingFlags = (
  [
    ['ignoreCase', 'i'],
    ['multiline', 'm'],
    ['dotAll', 's'],
    ['unicode', 'u'],
    ['unicodeSets', 'v'],
  ] as const
)
  .map(([name, flag]) => [getter(name), flag] as const)
  .filter((entry): entry is readonly [(this: unknown) => unknown, 'i' | 'm' | 's' | 'u' | 'v'] => entry[0] !== undefined);
const unicodeOf = matchingFlags.filter(([, flag]) => flag === 'u' || flag === 'v').map(([read]) => read);
const MAX_LENGTH = 0xffffffff;

/** What the spec's replace reads from `this`: `flags` (whose getter reads each flag), `exec`, `lastIndex` (own). */
const READ_BY_REPLACE: readonly PropertyKey[] = ['flags', 'hasIndices', 'global', 'ignoreCase', 'multiline', 'dotAll', 'unicode', 'unicodeSets', 'sticky', 'exec'];
/** What the spec's split reads from `this`: its `constructor`, `flags`, and `@@match` (IsRegExp, in the RegExp constructor). */
const READ_BY_SPLIT: readonly PropertyKey[] = ['constructor', ...READ_BY_REPLACE.slice(0, -1), Symbol.match];

/** Whether running the spec's algorithm on `rx` reads nothing from it but frozen intrinsics and its own numeric `lastIndex`. */
const isPlain = (rx: object, read: readonly PropertyKey[]): rx is RegExp => {
  try {
    apply(sourceOf, rx, []); // a TypeError unless rx has [[RegExpMatcher]] (or is %RegExp.prototype%); no trap runs
  } catch {
    return false;
  }
  if (getPrototypeOf(rx) !== regExpPrototype || typeof (rx as RegExp).lastIndex !== 'number') return false;
  for (const key of read) if (hasOwn(rx, key)) return false;
  return true;
};

const isUnicode = (rx: RegExp): boolean => unicodeOf.some(read => apply(read, rx, []) === true);

/** ECMA-262 AdvanceStringIndex: past the code point at `index` under `u`/`v`, else one code unit on. */
const advance = (text: string, index: number, unicode: boolean): number => {
  if (!unicode || index + 1 >= text.length) return index + 1;
  const first = text.charCodeAt(index);
  if (first < 0xd800 || first > 0xdbff) return index + 1;
  const second = text.charCodeAt(index + 1);
  return second < 0xdc00 || second > 0xdfff ? index + 1 : index + 2;
};

const exec = (rx: RegExp, text: string): RegExpExecArray | null => apply(nativeExec, rx, [text]) as RegExpExecArray | null;

/**
 * Search copies by flags and source: two expressions with the same source
 * and flags match alike (ECMA-262 EscapeRegExpPattern). Bounded: emptied
 * when full, and a long pattern is not kept, so that a service making
 * endless or huge patterns holds at most MAX_SEARCHES short ones.
 */
const searches = new Map<string, RegExp>();
const MAX_SEARCHES = 512;
/** Characters of flags and source (UTF-16 code units) beyond which a pattern's copy is made for each split. */
const MAX_KEPT_SOURCE = 1024;

/**
 * The spec's splitter without `y`, with `g` (and without `d`, which only
 * adds indices), and its flags (`g` then those of `matchingFlags` it has).
 */
const searchFor = (rx: RegExp): { search: RegExp; flags: string } => {
  let flags = 'g';
  for (const [read, flag] of matchingFlags) if (apply(read, rx, [])) flags += flag;
  const key = `${flags}/${apply(sourceOf, rx, [])}`;
  if (key.length > MAX_KEPT_SOURCE) return { search: new NativeRegExp(rx, flags), flags };
  let search = searches.get(key);
  if (search === undefined) {
    if (searches.size >= MAX_SEARCHES) searches.clear();
    search = new NativeRegExp(rx, flags);
    searches.set(key, search);
  }
  return { search, flags };
};

/** A value V8 holds as a small integer (a Smi: 31 bits and a sign on 64-bit Node) that is not negative. */
const isSmallIndex = (n: unknown): boolean => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0x7fffffff && !Object.is(n, -0);

/**
 * Whether V8 in plain Node splits by `rx` on its fast path, which searches
 * as `exec` does and so, under `u`, may find an empty match between the
 * two halves of a surrogate pair (`'💩a💩'.split(/(?<!a)/u)` cuts the
 * second 💩); its generic path follows the spec, which tries only the
 * positions between code points. V8 takes the fast path for an expression
 * made by RegExp or a literal, not sticky, still shaped as made (extensible,
 * no own property but a writable `lastIndex`), with a `lastIndex` and a
 * limit that are small non-negative integers (or no limit). Measured on
 * Node 20.20. What JavaScript cannot see (a computed 3 that V8 holds as a
 * double) counts as the integer it is.
 */
const splitsFastInNode = (rx: RegExp, limit: number | undefined): boolean =>
  apply(stickyOf, rx, []) !== true &&
  Object.isExtensible(rx) &&
  Reflect.ownKeys(rx).length === 1 &&
  Object.getOwnPropertyDescriptor(rx, 'lastIndex')?.writable === true &&
  isSmallIndex(rx.lastIndex) &&
  (limit === undefined || isSmallIndex(limit));

/** Whether `index` falls between the two halves of a surrogate pair of `text`. */
const splitsPair = (text: string, index: number): boolean => {
  const before = text.charCodeAt(index - 1);
  const at = text.charCodeAt(index);
  return before >= 0xd800 && before <= 0xdbff && at >= 0xdc00 && at <= 0xdfff;
};

const split = (rx: RegExp, text: string, limit: number | undefined): string[] => {
  const { search, flags } = searchFor(rx);
  const unicode = flags.includes('u') || flags.includes('v');
  // Under u, where V8 would not take its fast path, a match found inside a surrogate pair is one the spec's steps
  // never try: the search goes on past it. (Not under v: V8 11's generic path steps a v expression by code units.)
  const betweenCodePoints = flags.includes('u') && !splitsFastInNode(rx, limit);
  const result: string[] = [];
  const lim = limit === undefined ? MAX_LENGTH : limit >>> 0;
  if (lim === 0) return result;
  const size = text.length;
  if (size === 0) {
    search.lastIndex = 0;
    if (exec(search, text) === null) result.push(text);
    return result;
  }
  let p = 0;
  let q = 0;
  while (q < size) {
    search.lastIndex = q;
    const match = exec(search, text);
    if (match === null || match.index >= size) break;
    const at = match.index;
    if (betweenCodePoints && splitsPair(text, at)) {
      q = at + 1;
      continue;
    }
    const end = min(search.lastIndex, size);
    if (end === p) {
      q = advance(text, at, unicode);
      continue;
    }
    result.push(text.slice(p, at));
    if (result.length === lim) return result;
    p = end;
    for (let i = 1; i < match.length; i += 1) {
      result.push(match[i]);
      if (result.length === lim) return result;
    }
    q = p;
  }
  result.push(text.slice(p));
  return result;
};

/** ECMA-262 GetSubstitution: `template` with `$$`, `$&`, `` $` ``, `$'`, `$n`, `$nn` and `$<name>` replaced. */
const substitute = (matched: string, text: string, position: number, captures: readonly (string | undefined)[], groups: Record<string, unknown> | undefined, template: string): string => {
  let at = template.indexOf('$');
  if (at === -1) return template;
  let out = template.slice(0, at);
  const length = template.length;
  while (at !== -1) {
    const next = at + 1 < length ? template[at + 1] : '';
    let used = 1;
    let piece = '$';
    if (next === '$') {
      used = 2;
    } else if (next === '&') {
      used = 2;
      piece = matched;
    } else if (next === '`') {
      used = 2;
      piece = text.slice(0, position);
    } else if (next === "'") {
      used = 2;
      piece = text.slice(min(position + matched.length, text.length));
    } else if (next >= '0' && next <= '9') {
      const second = at + 2 < length ? template[at + 2] : '';
      let index = next.charCodeAt(0) - 48;
      let digits = 1;
      if (second >= '0' && second <= '9') {
        const two = index * 10 + second.charCodeAt(0) - 48;
        if (two <= captures.length) {
          index = two;
          digits = 2;
        }
      }
      used = 1 + digits;
      if (index >= 1 && index <= captures.length) piece = captures[index - 1] ?? '';
      else piece = template.slice(at, at + used);
    } else if (next === '<') {
      const close = template.indexOf('>', at + 2);
      if (close === -1 || groups === undefined) {
        used = 2;
        piece = '$<';
      } else {
        used = close + 1 - at;
        const capture = groups[template.slice(at + 2, close)];
        piece = capture === undefined ? '' : `${capture as string}`;
      }
    }
    out += piece;
    const from = at + used;
    at = template.indexOf('$', from);
    out += template.slice(from, at === -1 ? length : at);
  }
  return out;
};

const replace = (rx: RegExp, text: string, replaceValue: string | ((...args: unknown[]) => unknown)): string | undefined => {
  const global = apply(globalOf, rx, []);
  const unicode = global && isUnicode(rx);
  // The spec's Set(rx, "lastIndex", 0, true): a read-only lastIndex (a frozen expression) makes V8's method throw.
  if (global && !set(rx, 'lastIndex', 0)) return undefined;
  const matches: RegExpExecArray[] = [];
  for (;;) {
    const match = exec(rx, text);
    if (match === null) break;
    matches.push(match);
    if (!global) break;
    if (match[0] === '') rx.lastIndex = advance(text, rx.lastIndex, unicode);
  }
  let out = '';
  let next = 0;
  for (const match of matches) {
    const matched = match[0];
    const position = match.index;
    const captures = match.slice(1);
    const groups = match.groups;
    let replacement: string;
    if (typeof replaceValue === 'function') {
      const args: unknown[] = [matched, ...captures, position, text];
      if (groups !== undefined) args.push(groups);
      replacement = `${apply(replaceValue, undefined, args) as string}`;
    } else {
      replacement = substitute(matched, text, position, captures, groups, replaceValue);
    }
    if (position >= next) {
      out += text.slice(next, position) + replacement;
      next = position + matched.length;
    }
  }
  return next >= text.length ? out : out + text.slice(next);
};

const methods = {
  /** RegExp.prototype[@@split](string, limit), as ECMA-262 22.2.6.14. */
  [Symbol.split](this: unknown, string: unknown, limit: unknown): unknown {
    if ((typeof this !== 'object' && typeof this !== 'function') || this === null) return apply(nativeSplit, this, [string, limit]);
    const text = `${string as string}`; // the spec's first step, ToString(string)
    if ((limit === undefined || typeof limit === 'number') && isPlain(this, READ_BY_SPLIT)) return split(this, text, limit);
    return apply(nativeSplit, this, [text, limit]);
  },
  /** RegExp.prototype[@@replace](string, replaceValue), as ECMA-262 22.2.6.11. */
  [Symbol.replace](this: unknown, string: unknown, replaceValue: unknown): unknown {
    if ((typeof this !== 'object' && typeof this !== 'function') || this === null) return apply(nativeReplace, this, [string, replaceValue]);
    const text = `${string as string}`;
    const value = typeof replaceValue === 'function' ? (replaceValue as (...args: unknown[]) => unknown) : `${replaceValue as string}`;
    const replaced = isPlain(this, READ_BY_REPLACE) ? replace(this, text, value) : undefined;
    return replaced ?? apply(nativeReplace, this, [text, value]);
  },
};

/**
 * Put the faster `[Symbol.split]` and `[Symbol.replace]` on
 * %RegExp.prototype%, with the attributes of V8's. Call before the
 * intrinsics are hardened (lockdown.ts). This module keeps V8's own
 * RegExp constructor, taken as it is evaluated, before SES tames the
 * realm's: split's search copies are made by it, so that V8 runs `exec` on
 * them at full speed.
 */
export const installRegExpMethods = (): void => {
  for (const key of [Symbol.split, Symbol.replace] as const) {
    Object.defineProperty(RegExp.prototype, key, { value: methods[key], writable: true, enumerable: false, configurable: true });
  }
};
