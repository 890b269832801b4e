/**
 * What `withHeadroom(client, options)` accepts, checked once when the client is wrapped: a
 * wrong value is a programming error and throws a TypeError naming the option.
 */

/** `optimize`: send the compressed messages; `audit`: send the request unchanged and report
 * what compression would save; `off`: call nothing, pass every request through. */
export type HeadroomMode = 'optimize' | 'audit' | 'off';

export const MODES: readonly HeadroomMode[] = ['optimize', 'audit', 'off'];

/** What one successful `/v1/compress` call found, given to `onCompressed`. */
export interface CompressionStats {
  /** The SDK method that made the call: `chat.completions.create` or `messages.create`. */
  readonly api: string;
  readonly mode: 'optimize' | 'audit';
  /** The model whose context window the server targeted. */
  readonly model: string;
  /** True when the compressed messages went out (optimize mode and a transform ran). */
  readonly applied: boolean;
  readonly tokensBefore: number;
  readonly tokensAfter: number;
  readonly tokensSaved: number;
  /** tokensAfter / tokensBefore (1 when nothing was cut). */
  readonly compressionRatio: number;
  /** The server's transforms that changed something, e.g. `["smart_crusher:1"]`. */
  readonly transformsApplied: readonly string[];
  /** Round trip to `/v1/compress`, in milliseconds. */
  readonly latencyMs: number;
}

/** Where the one fail-open warning per client goes (default: `console`). */
export interface HeadroomLogger {
  warn(message: string): void;
}

export interface HeadroomOptions {
  /** The Headroom server (`headroom serve`). Default: `HEADROOM_BASE_URL`, else
   * `http://localhost:8787`. */
  baseUrl?: string;
  /** The model whose context limit to target. Default: each request's own `model`. */
  model?: string;
  /** Default `optimize`. */
  mode?: HeadroomMode;
  /** Longest wait for the server, in ms; past it the request goes out unchanged. Default 5000. */
  timeoutMs?: number;
  /** The first N messages are sent byte-identical (a provider-cached prefix). Default 0. */
  frozenMessageCount?: number;
  /** The server's token (`HEADROOM_SERVER_TOKEN` on the server). Default: the
   * `HEADROOM_SERVER_TOKEN` environment variable, if set. Never the provider's key. */
  token?: string;
  /** Called after every successful `/v1/compress` call; an exception it throws is logged. */
  onCompressed?: (stats: CompressionStats) => void;
  logger?: HeadroomLogger;
}

/** The options with every default filled in. */
export interface ResolvedOptions {
  readonly endpoint: string;
  readonly model: string | undefined;
  readonly mode: HeadroomMode;
  readonly timeoutMs: number;
  readonly frozenMessageCount: number;
  readonly token: string | undefined;
  readonly onCompressed: ((stats: CompressionStats) => void) | undefined;
  readonly logger: HeadroomLogger;
}

export const DEFAULT_BASE_URL = 'http://localhost:8787';
export const DEFAULT_TIMEOUT_MS = 5000;

function env(name: string): string | undefined {
  // No Node types in the public API: process may be absent (browsers, edge runtimes).
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const value = proc?.env?.[name];
  return value ? value : undefined;
}

function fail(name: string, expected: string, got: unknown): never {
  const shown = typeof got === 'string' ? `'${got}'` : String(got);
  throw new TypeError(`withHeadroom: options.${name} must be ${expected} (got ${shown})`);
}

function optionalString(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') fail(name, 'a non-empty string', value);
  return value;
}

export function resolveOptions(options: HeadroomOptions = {}): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('withHeadroom: options must be an object');
  }
  const baseUrl = optionalString('baseUrl', options.baseUrl) ?? env('HEADROOM_BASE_URL') ?? DEFAULT_BASE_URL;
  let endpoint: string;
  try {
    const url = new URL(baseUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(url.protocol);
    endpoint = `${url.origin}${url.pathname.replace(/\/+$/, '')}/v1/compress`;
  } catch {
    fail('baseUrl', 'an http(s) URL such as http://localhost:8787', baseUrl);
  }
  const mode = options.mode ?? 'optimize';
  if (!MODES.includes(mode)) fail('mode', `one of ${MODES.map((m) => `'${m}'`).join(', ')}`, mode);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    fail('timeoutMs', 'a positive number of milliseconds', timeoutMs);
  }
  const frozen = options.frozenMessageCount ?? 0;
  if (!Number.isInteger(frozen) || frozen < 0) fail('frozenMessageCount', 'an integer >= 0', frozen);
  if (options.onCompressed !== undefined && typeof options.onCompressed !== 'function') {
    fail('onCompressed', 'a function', options.onCompressed);
  }
  const logger = options.logger ?? console;
  if (typeof logger?.warn !== 'function') fail('logger', 'an object with a warn(message) method', logger);
  return {
    endpoint,
    model: optionalString('model', options.model),
    mode,
    timeoutMs,
    frozenMessageCount: frozen,
    token: optionalString('token', options.token) ?? env('HEADROOM_SERVER_TOKEN'),
    onCompressed: options.onCompressed,
    logger,
  };
}
