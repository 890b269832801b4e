/**
 * What withHeadroom() adds per call, over the server's own work, for a ~2k- and a ~50k-token
 * request (a tool result of JSON rows), with the real openai / @anthropic-ai/sdk clients, the
 * real Headroom server and the fake provider, all on 127.0.0.1:
 *
 *   cd js && npm run bench            (ROUNDS=N to change the number of measured rounds)
 *
 * Per round, interleaved: the SDK call as given (direct), the same call through withHeadroom
 * (wrapped), a bare fetch to /v1/compress with a request of the same size (compress), and the
 * SDK call with what that returned (direct, compressed). "added" = wrapped - direct: what a
 * user waits longer; "wrapper's own" = wrapped - compress - direct compressed: serialising,
 * checking the answer and rebuilding the request, on top of the server's round trip. Every
 * request differs from the ones before it (one row changes), so no cache in the server helps.
 * Medians in milliseconds (of the per-round differences for "added" and "wrapper's own").
 */
import { loadavg } from 'node:os';

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { withHeadroom } from 'headroom-context';

import { CLAUDE, GPT, KEY } from '../test/helpers/data.js';
import { FakeProvider } from '../test/helpers/provider.js';
import { HeadroomServer } from '../test/helpers/server.js';

const ROUNDS = Number(process.env.ROUNDS ?? 40);
const WARMUP = 3;

function rows(n: number, salt = 0): object[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `req-${100000 + i + (i === 0 ? salt * 1_000_000 : 0)}`,
    status: i % 17 ? 'ok' : 'error',
    region: ['eu-west-1', 'us-east-1', 'ap-south-1'][i % 3],
    latency_ms: 40 + ((i * 37) % 400),
    path: `/api/v2/orders/${(i * 7919) % 10007}`,
    message: i % 17 ? 'served' : `upstream timeout after ${1000 + i} ms`,
  }));
}

function openaiMessages(n: number, salt = 0): any[] {
  return [
    { role: 'system', content: 'You are an SRE assistant.' },
    { role: 'user', content: 'Which requests failed, and why?' },
    {
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'c1', type: 'function', function: { name: 'query', arguments: '{}' } }],
    },
    { role: 'tool', tool_call_id: 'c1', content: JSON.stringify(rows(n, salt), null, 2) },
  ];
}

function claudeMessages(n: number, salt = 0): any[] {
  return [
    { role: 'user', content: 'Which requests failed, and why?' },
    { role: 'assistant', content: [{ type: 'tool_use', id: 'tu1', name: 'query', input: {} }] },
    {
      role: 'user',
      content: [{ type: 'tool_result', tool_use_id: 'tu1', content: JSON.stringify(rows(n, salt), null, 2) }],
    },
  ];
}

async function compressRaw(url: string, body: object): Promise<any> {
  const response = await fetch(`${url}/v1/compress`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`/v1/compress: ${response.status}`);
  return response.json();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

interface Case {
  label: string;
  /** The SDK request of round `salt` (each one different). */
  body: (salt: number) => any;
  /** The /v1/compress body for an SDK request. */
  compressBody: (body: any) => object;
  direct: (body: any) => Promise<unknown>;
  wrapped: (body: any) => Promise<unknown>;
}

/** Row count giving about `tokens` tokens, from one measurement (tokens grow linearly). */
async function rowsFor(
  url: string,
  tokens: number,
  build: (n: number) => any[],
  model: string,
  extra: object,
): Promise<number> {
  const probe = await compressRaw(url, { model, messages: build(200), ...extra });
  return Math.max(1, Math.round((200 * tokens) / probe.tokens_before));
}

async function main(): Promise<void> {
  const provider = await FakeProvider.start();
  const server = await HeadroomServer.start({ providerBaseUrl: provider.baseUrl });
  try {
    const oai = new OpenAI({ apiKey: KEY, baseURL: provider.openaiBaseUrl, maxRetries: 0 });
    const ant = new Anthropic({ apiKey: KEY, baseURL: provider.baseUrl, maxRetries: 0 });
    const options = { baseUrl: server.url, timeoutMs: 60_000 };
    const woai = withHeadroom(oai, options);
    const want = withHeadroom(ant, options);
    const cases: Case[] = [];
    for (const tokens of [2_000, 50_000]) {
      const n = await rowsFor(server.url, tokens, openaiMessages, GPT, {});
      cases.push({
        label: `openai ~${tokens / 1000}k`,
        body: (salt) => ({ model: GPT, messages: openaiMessages(n, salt) }),
        compressBody: (body) => body,
        direct: (body) => oai.chat.completions.create(body),
        wrapped: (body) => woai.chat.completions.create(body),
      });
      const m = await rowsFor(server.url, tokens, claudeMessages, CLAUDE, { system: null });
      cases.push({
        label: `anthropic ~${tokens / 1000}k`,
        body: (salt) => ({ model: CLAUDE, max_tokens: 256, messages: claudeMessages(m, salt) }),
        compressBody: (body) => ({ model: CLAUDE, messages: body.messages, system: null }),
        direct: (body) => ant.messages.create(body),
        wrapped: (body) => want.messages.create(body),
      });
    }
    console.log(
      `withHeadroom overhead, medians of ${ROUNDS} rounds (ms); node ${process.version}; load average ${loadavg()[0]!.toFixed(1)}`,
    );
    const header = [
      'request',
      'tokens before -> after',
      'direct',
      'wrapped',
      'added',
      '/v1/compress',
      "wrapper's own",
    ];
    const lines: string[][] = [];
    let salt = 1;
    for (const c of cases) {
      const t = {
        direct: [] as number[],
        wrapped: [] as number[],
        compress: [] as number[],
        added: [] as number[],
        own: [] as number[],
      };
      let sizes = '';
      for (let round = 0; round < WARMUP + ROUNDS; round++) {
        const mine = c.body(salt++);
        const other = c.body(salt++);
        const direct = await timed(() => c.direct(mine));
        const wrapped = await timed(() => c.wrapped(mine));
        let answer: any;
        const compress = await timed(async () => {
          answer = await compressRaw(server.url, c.compressBody(other));
        });
        const small = await timed(() => c.direct({ ...other, messages: answer.messages }));
        sizes = `${answer.tokens_before} -> ${answer.tokens_after}`;
        if (round < WARMUP) continue;
        t.direct.push(direct);
        t.wrapped.push(wrapped);
        t.compress.push(compress);
        t.added.push(wrapped - direct);
        t.own.push(wrapped - compress - small);
      }
      await provider.reset();
      lines.push([
        c.label,
        sizes,
        ...[t.direct, t.wrapped, t.added, t.compress, t.own].map((v) => median(v).toFixed(1)),
      ]);
    }
    const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
    const row = (cells: string[]) =>
      cells.map((cell, i) => (i ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ');
    console.log(row(header));
    for (const l of lines) console.log(row(l));
  } finally {
    await Promise.all([server.stop(), provider.stop()]);
  }
}

await main();
