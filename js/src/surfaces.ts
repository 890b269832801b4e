/**
 * The SDK methods we compress, as data: how a request body becomes a `/v1/compress` body, and
 * how the server's answer goes back into the request. The client never edits messages itself:
 * what goes out is the body the caller built with `messages` (and `system`) as the server
 * returned them, everything else untouched.
 */
import type { CompressAnswer, CompressBody } from './compress.js';

export type Body = Record<string, unknown>;

export interface Surface {
  /** The method's name in stats and warnings. */
  readonly api: string;
  /** The body to send to `/v1/compress`, or null when there is nothing to compress. */
  request(body: Body, model: string | undefined, frozen: number): CompressBody | null;
  /** The request to send with the compressed messages. */
  apply(body: Body, answer: CompressAnswer): Body;
}

function base(body: Body, model: string | undefined, frozen: number): CompressBody | null {
  const messages = body.messages;
  const target = model ?? body.model;
  if (!Array.isArray(messages) || messages.length === 0 || typeof target !== 'string' || !target) {
    return null; // nothing to compress, or a request the provider will refuse by itself
  }
  return frozen > 0
    ? { model: target, messages, config: { frozen_message_count: frozen } }
    : { model: target, messages };
}

/** OpenAI (and Azure OpenAI) `chat.completions.create`. */
export const OPENAI_CHAT: Surface = {
  api: 'chat.completions.create',
  request: base,
  apply: (body, answer) => ({ ...body, messages: answer.messages }),
};

/** Anthropic `messages.create` (and `messages.stream`, `messages.parse`, which call it). */
export const ANTHROPIC_MESSAGES: Surface = {
  api: 'messages.create',
  request(body, model, frozen) {
    const request = base(body, model, frozen);
    // `system` always present, null when absent: the server then reads Anthropic blocks.
    return request && { ...request, system: body.system ?? null };
  },
  apply(body, answer) {
    const out: Body = { ...body, messages: answer.messages };
    if (answer.system !== undefined && answer.system !== null) out.system = answer.system;
    return out;
  },
};
