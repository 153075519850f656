/**
 * Which values a service sees are secrets, sealed in its replay log
 * (replay-log/seal.ts): environment variables by name pattern, HTTP headers
 * by name, and everything exchanged with some fetch hosts. The policy is
 * recorded in the manifest, so replay marks the same values as the build.
 */
import path from 'node:path';
import { secret } from '../replay-log/index.js';
import { checkOptionKeys } from '../replay-log/errors.js';
import { realPath } from './reach.js';

/** A service's secrets policy, as the manifest keeps it (defaults expanded). */
export interface SecretsPolicy {
  /** Glob patterns (`*` for any run of characters) of env names, matched ignoring case. */
  readonly env: readonly string[];
  /** Header names (lower case) whose values are sealed, in requests and responses. */
  readonly headers: readonly string[];
  /** Host patterns (`api.example.com`, `*.example.com`) whose request and response bodies and headers are all sealed. */
  readonly hosts: readonly string[];
  /** Files and directories (absolute) whose contents, read with fs, are sealed. */
  readonly files?: readonly string[];
  /**
   * Glob patterns of file base names whose contents are sealed wherever the
   * file is (by default dotenv's: `.env`, `.env.*`).
   */
  readonly fileNames?: readonly string[];
}

/** What a build script says (`importService(spec, { secrets })`). */
export interface SecretsOptions {
  readonly env?: readonly string[];
  readonly headers?: readonly string[];
  readonly hosts?: readonly string[];
  /** Files or directories (relative to the working directory) whose contents are secret: `readFile` results and bytes read from descriptors opened on them. */
  readonly files?: readonly string[];
  /** Include the default env patterns, header names and file names. Default: true. */
  readonly defaults?: boolean;
}

export const DEFAULT_SECRET_ENV: readonly string[] = ['*_SECRET*', 'SECRET*', '*_TOKEN*', 'TOKEN*', '*_KEY', '*PASSWORD*', '*PASSWD*', '*CREDENTIALS*', '*APIKEY*'];
export const DEFAULT_SECRET_HEADERS: readonly string[] = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'x-auth-token'];
/**
 * dotenv's files (https://github.com/motdotla/dotenv: `.env`, and
 * `.env.local`, `.env.production`... by convention): what `import
 * 'dotenv/config'` reads into process.env holds the same secrets that the
 * env defaults seal when they come from the real environment.
 */
export const DEFAULT_SECRET_FILE_NAMES: readonly string[] = ['.env', '.env.*'];

/** Expand the defaults, normalise case, make file paths absolute against `base`; throws TypeError for a malformed option. */
export const secretsPolicy = (options: SecretsOptions = {}, base: string = process.cwd()): SecretsPolicy => {
  if (typeof options !== 'object' || options === null) throw new TypeError('secrets takes { env?, headers?, hosts?, files?, defaults? }');
  checkOptionKeys(options, ['env', 'headers', 'hosts', 'files', 'defaults'], 'secrets');
  const list = (value: unknown, what: string): string[] => {
    if (value === undefined) return [];
    if (!Array.isArray(value) || !value.every(v => typeof v === 'string' && v.length > 0)) throw new TypeError(`secrets.${what} takes an array of non-empty strings`);
    return value as string[];
  };
  const defaults = options.defaults !== false;
  const unique = (items: string[]) => [...new Set(items)];
  return Object.freeze({
    env: unique([...(defaults ? DEFAULT_SECRET_ENV : []), ...list(options.env, 'env')]),
    headers: unique([...(defaults ? DEFAULT_SECRET_HEADERS : []), ...list(options.headers, 'headers')].map(h => h.toLowerCase())),
    hosts: unique(list(options.hosts, 'hosts').map(hostPattern)),
    ...(options.files === undefined ? {} : { files: unique(list(options.files, 'files').map(f => path.resolve(base, f))) }),
    ...(defaults ? { fileNames: DEFAULT_SECRET_FILE_NAMES } : {}),
  });
};

/** A glob (`*` any run of characters) as a whole-string RegExp, ignoring case unless `ignoreCase` is false. */
const globRegExp = (pattern: string, ignoreCase = true): RegExp =>
  new RegExp(`^${pattern.split('*').map(part => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, ignoreCase ? 'i' : '');

/** Host patterns match a URL's hostname, `*.example.com` any subdomain (not example.com itself); a final dot is the same host. */
export const hostMatches = (pattern: string, hostname: string): boolean => globRegExp(pattern).test(hostname.replace(/\.$/, ''));

/**
 * A `secrets.hosts` entry as the host name it names, lowercased: `host:port` and an origin
 * (`https://host[:port]`) name their host, any port (as `reach.fetch` takes them; compared with the
 * hostname alone, they never matched, and what they named went unsealed: found by the adversarial review).
 */
const hostPattern = (entry: string): string => {
  let host = entry.trim().toLowerCase().replace(/^[a-z][a-z0-9+.-]*:\/\//, '').replace(/[/?#].*$/, '');
  host = host.startsWith('[') ? host.replace(/^(\[[^\]]*\]).*$/, '$1') : host.replace(/:\d*$/, '');
  return host.replace(/\.$/, '');
};

/** The matchers of a policy, and the marking of values as secrets. */
export interface SecretMatcher {
  readonly policy: SecretsPolicy;
  isSecretEnv(name: string): boolean;
  isSecretHeader(name: string): boolean;
  isSecretHost(url: string): boolean;
  /** Is `file` (a path as the service gave it) one of the secret files, or below one, links resolved? */
  isSecretFile(file: unknown): boolean;
  /**
   * The service copied, renamed or linked `from` to `to` (a path): when
   * `from` is a secret file, `to` is one too from now on (host side, live).
   */
  deriveFile(from: unknown, to: unknown): void;
  /** `value`, marked secret when `secret` holds (an absent value stays as it is). */
  mark<T>(value: T, isSecret: boolean, label: string): T;
}

/** A path as fs takes it, a string or a Buffer, as text (undefined for anything else: a descriptor). */
const pathText = (p: unknown): string | undefined => (typeof p === 'string' ? p : p instanceof Uint8Array ? Buffer.from(p).toString() : undefined);

/** Copies of secret files remembered per service (bounded: a service copying endlessly cannot grow it). */
const MAX_DERIVED_FILES = 10_000;

export const makeSecretMatcher = (policy: SecretsPolicy = secretsPolicy()): SecretMatcher => {
  const env = policy.env.map(pattern => globRegExp(pattern));
  const headers = new Set(policy.headers);
  // Base names matched as they are written (case and all), as dotenv finds them.
  const fileNames = (policy.fileNames ?? []).map(name => globRegExp(name, false));
  /** Files the service made from a secret file (a copy, a rename, a link): secret too, for this process. */
  const derived = new Set<string>();
  // Every env read asks (nine patterns by default): the answer per name, for the names a service
  // reads (bounded, so a service reading endless names cannot grow it).
  const envVerdicts = new Map<string, boolean>();
  const matcher: SecretMatcher = Object.freeze({
    policy,
    isSecretEnv: (name: string) => {
      let secret = envVerdicts.get(name);
      if (secret === undefined) {
        secret = env.some(re => re.test(name));
        if (envVerdicts.size < 1024) envVerdicts.set(name, secret);
      }
      return secret;
    },
    isSecretHeader: (name: string) => headers.has(name.toLowerCase()),
    isSecretHost: (url: string) => {
      if (policy.hosts.length === 0) return false;
      let hostname: string;
      try {
        hostname = new URL(url).hostname;
      } catch {
        return false;
      }
      return policy.hosts.some(p => hostMatches(p, hostname));
    },
    isSecretFile: (file: unknown) => {
      if (!policy.files?.length && !fileNames.length && !derived.size) return false;
      const text = pathText(file);
      if (text === undefined) return false;
      if (fileNames.some(pattern => pattern.test(path.basename(text)))) return true;
      const real = realPath(text);
      // A link named otherwise that leads to such a file, and copies the service made of a secret file.
      if (fileNames.some(pattern => pattern.test(path.basename(real)))) return true;
      if (derived.size) for (let at = real; ; at = path.dirname(at)) {
        if (derived.has(at)) return true;
        if (path.dirname(at) === at) break;
      }
      if (!policy.files?.length) return false;
      return policy.files.some(root => {
        const base = realPath(root);
        return real === base || real.startsWith(base.endsWith(path.sep) ? base : base + path.sep);
      });
    },
    deriveFile: (from: unknown, to: unknown) => {
      const source = pathText(from);
      const target = pathText(to);
      if (source === undefined || target === undefined) return;
      const self = matcher as SecretMatcher;
      const sourceReal = realPath(path.resolve(source));
      const targetReal = realPath(path.resolve(target));
      // The new places: the target itself when the source is secret, and, when the source is a
      // directory holding secret files or copies (moved or copied whole), where those land.
      const landed: string[] = [];
      if (self.isSecretFile(source)) landed.push(targetReal);
      const inside = sourceReal.endsWith(path.sep) ? sourceReal : sourceReal + path.sep;
      for (const root of [...(policy.files ?? []).map(f => realPath(f)), ...derived]) {
        if (root.startsWith(inside)) landed.push(path.join(targetReal, path.relative(sourceReal, root)));
      }
      for (const place of landed) {
        // Refused past the bound, rather than let a copy go unsealed.
        if (derived.size >= MAX_DERIVED_FILES) throw new TypeError(`more than ${MAX_DERIVED_FILES} copies or new names of secret files in one service: refused, as the next one could not be kept secret`);
        derived.add(place);
      }
    },
    mark: <T>(value: T, isSecret: boolean, label: string): T => (isSecret && value !== undefined && value !== null ? (secret(value, label) as unknown as T) : value),
  });
  return matcher;
};
