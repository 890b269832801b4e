/**
 * The fake provider, the real server and a recording gate in front of the server, for one
 * test file: `const stack = useStack()`. Clients point `baseUrl` at `stack.gate.url`; each
 * test starts with nothing recorded and the gate forwarding.
 */
import { after, before, beforeEach } from 'node:test';

import { type CompressionStats, type HeadroomOptions, withHeadroom } from 'headroom-context';

import { Warnings } from './data.js';
import { Gate } from './gate.js';
import { FakeProvider } from './provider.js';
import { HeadroomServer } from './server.js';

export interface Stack {
  provider: FakeProvider;
  server: HeadroomServer;
  gate: Gate;
  /** Settles once all three are up (a file's own `before` hooks may run alongside). */
  ready: Promise<void>;
}

export function useStack(): Stack {
  const stack = {} as Stack;
  let started: () => void = () => undefined;
  let failed: (err: unknown) => void = () => undefined;
  stack.ready = new Promise<void>((ok, fail) => {
    started = ok;
    failed = fail;
  });
  stack.ready.catch(() => undefined);
  before(async () => {
    try {
      stack.provider = await FakeProvider.start();
      stack.server = await HeadroomServer.start({ providerBaseUrl: stack.provider.baseUrl });
      stack.gate = await Gate.start(stack.server.url);
      started();
    } catch (err) {
      failed(err);
      throw err;
    }
  });
  beforeEach(async () => {
    await stack.provider.reset();
    stack.gate.seen.length = 0;
    stack.gate.mode = { kind: 'forward' };
  });
  after(async () => {
    await Promise.all([stack.gate?.stop(), stack.server?.stop(), stack.provider?.stop()]);
  });
  return stack;
}

/** What the server's /v1/compress answers for `body` (asked directly, not through a client). */
export async function serverAnswer(stack: Stack, body: unknown): Promise<any> {
  const response = await fetch(`${stack.server.url}/v1/compress`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`/v1/compress: ${response.status} ${await response.text()}`);
  return response.json();
}

/** `client` wrapped to use `stack`'s server (through the gate), recording what it reports. */
export function wrapForTest<C extends object>(
  stack: Stack,
  client: C,
  extra: HeadroomOptions = {},
): { client: C; stats: CompressionStats[]; warnings: Warnings } {
  const stats: CompressionStats[] = [];
  const warnings = new Warnings();
  const wrapped = withHeadroom(client, {
    baseUrl: stack.gate.url,
    timeoutMs: 30_000,
    onCompressed: (s) => stats.push(s),
    logger: warnings,
    ...extra,
  });
  return { client: wrapped, stats, warnings };
}
