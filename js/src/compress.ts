/**
 * One `POST /v1/compress` call. Any way it can fail (unreachable, slower than the timeout, an
 * error status, an answer that is not the expected shape) is a `CompressError` saying which;
 * the caller turns it into the fail-open path.
 */

/** The wire body of `/v1/compress` (the reference server's format). */
export interface CompressBody {
  model: string;
  messages: unknown[];
  /** Anthropic bodies only; `null` when the request has none (it makes the server read the
   * messages as Anthropic blocks). */
  system?: unknown;
  config?: { frozen_message_count?: number };
}

export interface CompressAnswer {
  readonly messages: unknown[];
  /** Present for an Anthropic body. */
  readonly system?: unknown;
  readonly tokensBefore: number;
  readonly tokensAfter: number;
  readonly tokensSaved: number;
  readonly compressionRatio: number;
  readonly transformsApplied: string[];
}

export class CompressError extends Error {
  /** True when the caller's own AbortSignal ended the call (not the server's fault). */
  readonly aborted: boolean;

  constructor(message: string, options: { cause?: unknown; aborted?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CompressError';
    this.aborted = options.aborted ?? false;
  }
}

export interface CallSettings {
  readonly endpoint: string;
  readonly timeoutMs: number;
  readonly token: string | undefined;
  /** The SDK call's own signal: aborting it abandons the compression too. */
  readonly signal?: AbortSignal | null | undefined;
}

const EXCERPT = 200;

function num(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function readAnswer(data: unknown): CompressAnswer {
  const d = data as Record<string, unknown> | null;
  if (typeof d !== 'object' || d === null || !Array.isArray(d.messages)) {
    throw new CompressError('the answer has no messages list');
  }
  if (!d.messages.every((m) => typeof m === 'object' && m !== null && !Array.isArray(m))) {
    throw new CompressError('the answer has a message that is not an object');
  }
  const { tokens_before: before, tokens_after: after } = d;
  if (!num(before) || !num(after)) throw new CompressError('the answer has no token counts');
  const transforms = Array.isArray(d.transforms_applied)
    ? d.transforms_applied.filter((t): t is string => typeof t === 'string')
    : [];
  const answer: CompressAnswer = {
    messages: d.messages,
    tokensBefore: before,
    tokensAfter: after,
    tokensSaved: num(d.tokens_saved) ? d.tokens_saved : Math.max(0, before - after),
    compressionRatio: num(d.compression_ratio) ? d.compression_ratio : before ? after / before : 1,
    transformsApplied: transforms,
  };
  return 'system' in d ? { ...answer, system: d.system } : answer;
}

/** Calls the server; resolves with its answer or rejects with a CompressError. */
export async function compress(body: CompressBody, settings: CallSettings): Promise<CompressAnswer> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, settings.timeoutMs);
  const outer = settings.signal ?? undefined;
  const onAbort = (): void => controller.abort();
  if (outer?.aborted) controller.abort();
  outer?.addEventListener('abort', onAbort, { once: true });
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (settings.token !== undefined) headers['x-headroom-token'] = settings.token;
  try {
    const response = await fetch(settings.endpoint, {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    const text = await response.text();
    if (!response.ok) {
      const excerpt = text.length > EXCERPT ? `${text.slice(0, EXCERPT)}...` : text;
      throw new CompressError(`the server answered ${response.status}: ${excerpt}`);
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (exc) {
      throw new CompressError('the answer is not JSON', { cause: exc });
    }
    return readAnswer(data);
  } catch (exc) {
    if (exc instanceof CompressError) throw exc;
    if (timedOut) throw new CompressError(`no answer within timeoutMs=${settings.timeoutMs}`, { cause: exc });
    if (outer?.aborted) throw new CompressError('the request was aborted', { cause: exc, aborted: true });
    const cause = (exc as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message ?? (exc as Error).message ?? String(exc);
    throw new CompressError(`the server is unreachable (${detail})`, { cause: exc });
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onAbort);
  }
}
