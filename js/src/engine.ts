/**
 * What a wrapped client does around one SDK call, and its one fail-open boundary: whatever
 * goes wrong on our side (server unreachable, slower than `timeoutMs`, an error status, an
 * unexpected answer), the request the caller built goes out unchanged, and the first such
 * failure of this client is logged once. The provider's own errors are never touched: they
 * come from the SDK call, which is the caller's.
 */
import { compress, CompressError } from './compress.js';
import type { CompressionStats, ResolvedOptions } from './options.js';
import { PendingCall } from './pending.js';
import type { Body, Surface } from './surfaces.js';

type Send = (body: unknown, requestOptions: unknown) => unknown;

function signalOf(requestOptions: unknown): AbortSignal | undefined {
  const signal = (requestOptions as { signal?: unknown } | null | undefined)?.signal;
  return signal instanceof AbortSignal ? signal : undefined;
}

function isBody(value: unknown): value is Body {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class Engine {
  readonly options: ResolvedOptions;
  #warned = new Set<string>();

  constructor(options: ResolvedOptions) {
    this.options = options;
  }

  /** A wrapped SDK method: `send` is the SDK's own, called with the body to send. */
  wrap(surface: Surface, send: Send): Send {
    return (body, requestOptions) => {
      if (this.options.mode === 'off' || !isBody(body)) return send(body, requestOptions);
      const started = this.prepare(surface, body, signalOf(requestOptions)).then((prepared) => ({
        value: send(prepared, requestOptions),
      }));
      return new PendingCall(started);
    };
  }

  /** The body to send: compressed in optimize mode, else as given. Never rejects. */
  async prepare(surface: Surface, body: Body, signal?: AbortSignal): Promise<Body> {
    const { options } = this;
    const request = surface.request(body, options.model, options.frozenMessageCount);
    if (request === null) return body;
    const t0 = performance.now();
    let answer;
    try {
      answer = await compress(request, {
        endpoint: options.endpoint,
        timeoutMs: options.timeoutMs,
        token: options.token,
        signal,
      });
    } catch (exc) {
      if (!(exc instanceof CompressError && exc.aborted)) {
        const reason = exc instanceof CompressError ? exc.message : `unexpected error: ${String(exc)}`;
        this.#warnOnce(
          'server',
          `headroom: ${options.endpoint} failed (${reason}); requests go out uncompressed ` +
            `(warned once per client)`,
        );
      }
      return body;
    }
    const applied = options.mode === 'optimize' && answer.transformsApplied.length > 0;
    this.#report({
      api: surface.api,
      mode: options.mode === 'audit' ? 'audit' : 'optimize',
      model: request.model,
      applied,
      tokensBefore: answer.tokensBefore,
      tokensAfter: answer.tokensAfter,
      tokensSaved: answer.tokensSaved,
      compressionRatio: answer.compressionRatio,
      transformsApplied: answer.transformsApplied,
      latencyMs: performance.now() - t0,
    });
    return applied ? surface.apply(body, answer) : body;
  }

  #report(stats: CompressionStats): void {
    const callback = this.options.onCompressed;
    if (callback === undefined) return;
    try {
      callback(stats);
    } catch (exc) {
      // An observer never breaks the call.
      this.#warnOnce('onCompressed', `headroom: onCompressed threw (${String(exc)}); ignored`);
    }
  }

  #warnOnce(kind: string, message: string): void {
    if (this.#warned.has(kind)) return;
    this.#warned.add(kind);
    try {
      this.options.logger.warn(message);
    } catch {
      // a logger that throws is not worth failing a request for
    }
  }
}
