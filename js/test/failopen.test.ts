/**
 * Fail open: when our server is unreachable, slower than timeoutMs, or answers an error, the
 * request goes out exactly as the caller built it, and each wrapped client warns once.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';
import OpenAI, { APIUserAbortError } from 'openai';
import { type HeadroomOptions, withHeadroom } from 'headroom-context';

import { CLAUDE, claudeHistory, chatHistory, GPT, KEY, Warnings } from './helpers/data.js';
import { HeadroomServer } from './helpers/server.js';
import { type Stack, useStack } from './helpers/stack.js';

const stack = useStack();
const TOKEN = 'server-token-7c1e';
let guarded: HeadroomServer;
let closedPort: number;

before(async () => {
  await stack.ready;
  guarded = await HeadroomServer.start({ providerBaseUrl: stack.provider.baseUrl, token: TOKEN });
  const probe = createServer();
  await new Promise<void>((ok) => probe.listen(0, '127.0.0.1', ok));
  closedPort = (probe.address() as { port: number }).port;
  await new Promise<void>((ok) => probe.close(() => ok()));
});
after(async () => {
  await guarded?.stop();
});

/** One SDK's way to send a history and read back what went upstream. */
interface Sdk {
  name: string;
  client(options: HeadroomOptions): unknown;
  send(client: unknown, stream: boolean, signal?: AbortSignal): Promise<string>;
  original(): unknown[];
}

const SDKS: Sdk[] = [
  {
    name: 'openai',
    client: (options) =>
      withHeadroom(
        new OpenAI({ apiKey: KEY, baseURL: stack.provider.openaiBaseUrl, maxRetries: 0 }),
        options,
      ),
    async send(client, stream, signal) {
      const c = client as OpenAI;
      if (!stream) {
        const r = await c.chat.completions.create({ model: GPT, messages: chatHistory() }, { signal });
        return r.choices[0]!.message.content ?? '';
      }
      let text = '';
      const s = await c.chat.completions.create(
        { model: GPT, messages: chatHistory(), stream: true },
        { signal },
      );
      for await (const chunk of s) text += chunk.choices[0]?.delta?.content ?? '';
      return text;
    },
    original: chatHistory,
  },
  {
    name: 'anthropic',
    client: (options) =>
      withHeadroom(new Anthropic({ apiKey: KEY, baseURL: stack.provider.baseUrl, maxRetries: 0 }), options),
    async send(client, stream, signal) {
      const c = client as Anthropic;
      const body = { model: CLAUDE, max_tokens: 256, messages: claudeHistory() };
      if (!stream) {
        const r = await c.messages.create(body, { signal });
        return r.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
      }
      return c.messages.stream(body, { signal }).finalText();
    },
    original: claudeHistory,
  },
];

/** How our server fails, and what the warning says. */
interface Failure {
  name: string;
  setup(stack: Stack): HeadroomOptions;
  warning: RegExp;
}

const FAILURES: Failure[] = [
  {
    name: 'server down',
    setup: () => ({ baseUrl: `http://127.0.0.1:${closedPort}` }),
    warning: /unreachable \(ECONNREFUSED\)/,
  },
  {
    name: 'slower than timeoutMs',
    setup: (s) => {
      s.gate.mode = { kind: 'hold', ms: 120_000 };
      return { baseUrl: s.gate.url, timeoutMs: 300 };
    },
    warning: /no answer within timeoutMs=300/,
  },
  {
    name: 'a 500',
    setup: (s) => {
      s.gate.mode = { kind: 'status', status: 500, body: '{"error": "boom"}' };
      return { baseUrl: s.gate.url };
    },
    warning: /answered 500: \{"error": "boom"\}/,
  },
  {
    name: 'an answer that is not JSON',
    setup: (s) => {
      s.gate.mode = { kind: 'status', status: 200, body: '<html>proxy login</html>' };
      return { baseUrl: s.gate.url };
    },
    warning: /the answer is not JSON/,
  },
  {
    name: 'a 401 (the server wants a token)',
    setup: () => ({ baseUrl: guarded.url }),
    warning: /answered 401: .*valid token is required/,
  },
];

const ECHO: Record<string, string> = {
  openai: 'echo: 4 messages, last user: Which requests failed?',
  anthropic: 'echo: 3 messages, last user: ',
};

for (const sdk of SDKS) {
  describe(`${sdk.name}: fail open`, () => {
    for (const failure of FAILURES) {
      test(`${failure.name}: requests go out unchanged, streams too, one warning per client`, async () => {
        const warnings = new Warnings();
        const client = sdk.client({ timeoutMs: 30_000, ...failure.setup(stack), logger: warnings });
        assert.equal(await sdk.send(client, false), ECHO[sdk.name]);
        assert.equal(await sdk.send(client, true), ECHO[sdk.name]);
        const upstream = await stack.provider.requests();
        assert.equal(upstream.length, 2);
        for (const r of upstream) assert.deepEqual(r.body.messages, sdk.original());
        assert.equal(warnings.messages.length, 1, warnings.messages.join('\n'));
        assert.match(warnings.messages[0]!, failure.warning);
        assert.match(warnings.messages[0]!, /requests go out uncompressed/);
        assert.ok(!warnings.messages[0]!.includes(KEY));

        const other = new Warnings();
        await sdk.send(sdk.client({ timeoutMs: 30_000, ...failure.setup(stack), logger: other }), false);
        assert.equal(other.messages.length, 1);
      });
    }

    test('the same client compresses again once the server is back', async () => {
      const warnings = new Warnings();
      stack.gate.mode = { kind: 'status', status: 503, body: 'starting' };
      const client = sdk.client({ baseUrl: stack.gate.url, timeoutMs: 30_000, logger: warnings });
      await sdk.send(client, false);
      stack.gate.mode = { kind: 'forward' };
      await sdk.send(client, false);
      const [first, second] = await stack.provider.requests();
      assert.deepEqual(first!.body.messages, sdk.original());
      assert.ok(JSON.stringify(second!.body.messages).length < JSON.stringify(sdk.original()).length / 3);
      assert.equal(warnings.messages.length, 1);
    });

    test('with the server’s token (option or HEADROOM_SERVER_TOKEN) the request is compressed', async () => {
      const warnings = new Warnings();
      const client = sdk.client({ baseUrl: guarded.url, token: TOKEN, timeoutMs: 30_000, logger: warnings });
      await sdk.send(client, false);
      process.env.HEADROOM_SERVER_TOKEN = TOKEN;
      try {
        await sdk.send(sdk.client({ baseUrl: guarded.url, timeoutMs: 30_000, logger: warnings }), false);
      } finally {
        delete process.env.HEADROOM_SERVER_TOKEN;
      }
      const sent = await stack.provider.requests();
      assert.equal(sent.length, 2);
      for (const r of sent)
        assert.ok(JSON.stringify(r.body.messages).length < JSON.stringify(sdk.original()).length / 3);
      assert.deepEqual(warnings.messages, []);
    });
  });
}

describe('the caller’s abort', () => {
  test('aborting while the server is thinking aborts the call, without a warning', async () => {
    const warnings = new Warnings();
    stack.gate.mode = { kind: 'hold', ms: 120_000 };
    const client = SDKS[0]!.client({ baseUrl: stack.gate.url, timeoutMs: 60_000, logger: warnings });
    const controller = new AbortController();
    const call = SDKS[0]!.send(client, false, controller.signal);
    setTimeout(() => controller.abort(), 200);
    await assert.rejects(call, APIUserAbortError);
    assert.deepEqual(await stack.provider.requests(), []);
    assert.deepEqual(warnings.messages, []);
  });
});
