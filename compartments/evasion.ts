/**
 * SES refuses sources in which `<!--`, `-->`, `import(` or `eval(` appear
 * anywhere, comments and strings included (SES_HTML_COMMENT_REJECTED,
 * SES_IMPORT_REJECTED, SES_EVAL_REJECTED): popular packages such as marked,
 * moment, semver, zod and highlight.js trip on it. @endo/evasive-transform rewrites just those comments,
 * strings and regular expressions so they keep their meaning and pass. It
 * runs at build time, only on sources that match SES's own patterns (one
 * regular-expression test per module, ses/src/transforms.js); the archive
 * stores the result, so restore needs nothing.
 *
 * The rewrite is a full Babel pass (moment.js, 183 KB: about 0.7 s without
 * the source map we used to have it make and then dropped), so it
 * is cached on disk by the sha256 of its input, beside the package that
 * does it (build-cache.ts: `node_modules/.cache/membrane-snapshot/evasion-*`):
 * a rebuild of the same dependencies rewrites nothing.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { buildCache } from './build-cache.js';
import { requiresEsmNatively } from './archive-parsers.js';
import { CJS_IMPORT } from './cjs.js';

/** SES's rejection patterns (html comments, import expressions, direct eval), as one test. */
const censored = /<!--|-->|(^|[^.]|\.\.\.)\bimport(\s*(?:\(|\/[/*]))|(^|[^.])\beval(\s*\()/;
/** SES's direct-eval pattern (ses/src/transforms.js, someDirectEvalPattern), global. */
const evalText = /(^|[^.])\beval(\s*\()/g;

type Comment = { value: string };
type BabelNode = {
  type: string;
  value?: unknown;
  extra?: Record<string, unknown>;
  callee?: BabelNode;
  name?: string;
  quasis?: Array<{ value: { raw: string; cooked?: string } }>;
  loc?: { start: { line: number; column: number } };
  leadingComments?: Comment[];
  innerComments?: Comment[];
  trailingComments?: Comment[];
};
type BabelScope = { getBinding(name: string): { scope: BabelScope } | undefined; rename(name: string): void };
type BabelPath = { node: BabelNode; parent: BabelNode; scope?: BabelScope; replaceWith(node: unknown): void };

/**
 * What @endo/evasive-transform leaves to SES's direct-eval test, rewritten:
 * `eval(` in comments (julia.js of highlight.js) becomes `EVAL(`; in a
 * string or an untagged template, its `e` is written `\u0065` (same
 * value); a direct `eval(...)` call, which SES cannot run, becomes an
 * indirect one, `(0, eval)(...)`: a feature test (`eval('(async () =>
 * {})')`) or `eval('(' + json + ')')` computes what it computes in Node,
 * and code that reads the caller's local variables does not see them
 * (a ReferenceError, or `typeof local` answering 'undefined').
 */
const evadeEval = (path: BabelPath): void => {
  const { node } = path;
  for (const comments of [node.leadingComments, node.innerComments, node.trailingComments]) {
    for (const comment of comments ?? []) comment.value = comment.value.replace(evalText, '$1EVAL$2');
  }
  if (node.type === 'StringLiteral' && typeof node.value === 'string' && evalText.test(node.value)) {
    evalText.lastIndex = 0;
    node.extra = { rawValue: node.value, raw: JSON.stringify(node.value).replace(evalText, '$1\\u0065val$2') };
  } else if (node.type === 'TemplateLiteral' && path.parent.type !== 'TaggedTemplateExpression') {
    for (const quasi of node.quasis ?? []) quasi.value.raw = quasi.value.raw.replace(evalText, '$1\\u0065val$2');
  } else if (node.type === 'CallExpression' && node.callee?.type === 'Identifier' && node.callee.name === 'eval') {
    // SES cannot run a direct eval: it becomes an indirect one, `(0, eval)(...)`, which sees the
    // compartment's globals but not the caller's local variables.
    node.callee = { type: 'SequenceExpression', expressions: [{ type: 'NumericLiteral', value: 0 }, node.callee] } as unknown as BabelNode;
  }
  evalText.lastIndex = 0;
};
/** evadeEval, and in a script (a CommonJS module) a dynamic `import(x)` made a call of its require's import (CJS_IMPORT). */
const evadeFor =
  (sourceType: 'module' | 'script') =>
  (path: BabelPath): void => {
    const { node } = path;
    if (sourceType === 'script' && node.type === 'CallExpression' && node.callee?.type === 'Import') {
      // The rewrite reads the module's require and the global Symbol: a binding of the module's own that shadows
      // either where import() is (function (require) {...}, a bundle's module wrapper, a local Symbol) is renamed
      // (with its references), or the call reached the module's binding (found by the adversarial review, h9adv).
      for (const name of ['require', 'Symbol']) path.scope?.getBinding(name)?.scope.rename(name);
      node.callee = {
        type: 'MemberExpression',
        object: { type: 'Identifier', name: 'require' },
        property: {
          type: 'CallExpression',
          callee: { type: 'MemberExpression', object: { type: 'Identifier', name: 'Symbol' }, property: { type: 'Identifier', name: 'for' }, computed: false },
          arguments: [{ type: 'StringLiteral', value: CJS_IMPORT }],
        },
        computed: true,
      } as unknown as BabelNode;
    }
    evadeEval(path);
  };

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Bump when the rewrite's output may change for the same input. */
const CACHE_FORMAT = 5;

/** Where rewrites are cached (build-cache.ts; undefined when there is no node_modules to keep them in). */
const cache = buildCache('evasion', '@endo/evasive-transform', CACHE_FORMAT, import.meta.url);
export const evasionCacheDir = cache?.dir;

/** The cache file name of a rewrite: sha256 of the source type and the source. */
export const evasionCacheKey = (source: string, sourceType: 'module' | 'script'): string => createHash('sha256').update(`${sourceType}\0`).update(source).digest('hex');

type EvasiveTransform = typeof import('@endo/evasive-transform');
let evasive: EvasiveTransform | undefined;
/**
 * @endo/evasive-transform, loaded (with Babel) when a rewrite first misses
 * the cache: Node's require of an ES module where it loads one as Node does
 * (archive-parsers.ts says why), else preloadEvasiveTransform loaded it.
 */
const evasiveTransform = (): EvasiveTransform => (evasive ??= createRequire(import.meta.url)('@endo/evasive-transform') as EvasiveTransform);

/** Load @endo/evasive-transform now, where `require` cannot load an ES module as Node does (archive-parsers.ts, requiresEsmNatively). */
export const preloadEvasiveTransform = async (): Promise<void> => {
  if (!requiresEsmNatively()) evasive ??= await import('@endo/evasive-transform');
};

/** Whether SES would refuse this source text (its own patterns). */
export const wouldReject = (source: string): boolean => censored.test(source);

/**
 * The source, rewritten if SES would refuse it (else the same string).
 * Throws what @endo/evasive-transform throws on a source Babel cannot parse.
 */
export const evade = (source: string, sourceType: 'module' | 'script', location: string): string => {
  if (!censored.test(source)) return source;
  const key = evasionCacheKey(source, sourceType);
  const hit = cache?.read(key);
  if (hit !== undefined) return hit.toString('utf8');
  let code: string;
  try {
    // No sourceUrl: it would make a source map we do not keep (a third of the time).
    ({ code } = evasiveTransform().evadeCensorSync(source, { sourceType, customVisitor: evadeFor(sourceType) as never }));
  } catch (cause) {
    throw new Error(`${location}: the rewrite of text SES refuses (<!--, -->, import, eval) failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  cache?.write(key, code);
  return code;
};

type Language = 'mjs' | 'cjs';

const transform =
  (parser: Language) =>
  async (bytes: Uint8Array, _specifier: string, location: string, _packageLocation: string, params: { sourceMap?: string }) => {
    const source = decoder.decode(bytes);
    const evaded = evade(source, parser === 'mjs' ? 'module' : 'script', location);
    return { bytes: evaded === source ? bytes : encoder.encode(evaded), parser, sourceMap: params.sourceMap };
  };

/** compartment-mapper `moduleTransforms` applying the evasion to JavaScript modules. */
export const evasiveTransforms = () => ({ mjs: transform('mjs'), cjs: transform('cjs') });
