/**
 * withHeadroom() around the real `openai` client, against the real Headroom server in front
 * of the fake provider: what the provider receives is what the server's /v1/compress answered.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import OpenAI, { AzureOpenAI, BadRequestError, NotFoundError } from 'openai';
import { type HeadroomOptions, withHeadroom } from 'headroom-context';

import {
  assertLosslessTable,
  chatHistory,
  GPT,
  KEY,
  QUERY_TOOL,
  TOOL_TEXT,
  Warnings,
} from './helpers/data.js';
import { serverAnswer, useStack, wrapForTest } from './helpers/stack.js';

const stack = useStack();

function sdk(): OpenAI {
  return new OpenAI({ apiKey: KEY, baseURL: stack.provider.openaiBaseUrl, maxRetries: 0 });
}

function wrapped(extra: HeadroomOptions = {}): ReturnType<typeof wrapForTest<OpenAI>> {
  return wrapForTest(stack, sdk(), extra);
}

describe('openai: chat.completions.create', () => {
  test('the provider receives the messages /v1/compress answered, everything else as sent', async () => {
    const { client, stats, warnings } = wrapped();
    const body = {
      model: GPT,
      messages: chatHistory(),
      tools: [QUERY_TOOL],
      temperature: 0.2,
      max_tokens: 300,
    };
    const completion = await client.chat.completions.create(body);

    const upstream = await stack.provider.only();
    const expected = await serverAnswer(stack, { model: GPT, messages: chatHistory() });
    assert.deepEqual(upstream.body.messages, expected.messages);
    assert.deepEqual({ ...upstream.body, messages: undefined }, { ...body, messages: undefined });
    assert.equal(upstream.path, '/v1/chat/completions');
    assert.equal(upstream.headers.authorization, `Bearer ${KEY}`);
    // Untouched before the tool result; the result is a lossless table; the pair intact.
    assert.deepEqual(upstream.body.messages.slice(0, 3), chatHistory().slice(0, 3));
    assert.equal(upstream.body.messages[3].tool_call_id, 'c1');
    assertLosslessTable(upstream.body.messages[3].content);
    assert.equal(
      completion.choices[0]?.message.content,
      'echo: 4 messages, last user: Which requests failed?',
    );
    // The provider's usage counts what it received (JSON length / 4): the compressed prompt.
    const prompt = completion.usage!.prompt_tokens;
    assert.ok(prompt > 0 && prompt < TOOL_TEXT.length / 4 / 2, `prompt_tokens ${prompt}`);

    assert.equal(stats.length, 1);
    const s = stats[0]!;
    assert.equal(s.api, 'chat.completions.create');
    assert.equal(s.mode, 'optimize');
    assert.equal(s.model, GPT);
    assert.equal(s.applied, true);
    assert.equal(s.tokensBefore, expected.tokens_before);
    assert.equal(s.tokensAfter, expected.tokens_after);
    assert.equal(s.tokensSaved, expected.tokens_before - expected.tokens_after);
    assert.ok(s.tokensSaved > 5000, `saved ${s.tokensSaved}`);
    assert.deepEqual(s.transformsApplied, ['smart_crusher:1']);
    assert.deepEqual(warnings.messages, []);
  });

  test('the caller’s request object is not modified', async () => {
    const { client } = wrapped();
    const messages = chatHistory();
    const body = { model: GPT, messages };
    await client.chat.completions.create(body);
    assert.equal(body.messages, messages);
    assert.deepEqual(messages, chatHistory());
  });

  test('streaming: chunks come back as the SDK reads them, the request went out compressed', async () => {
    const { client, stats } = wrapped();
    const stream = await client.chat.completions.create({
      model: GPT,
      messages: chatHistory(),
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      chunks += 1;
      text += chunk.choices[0]?.delta?.content ?? '';
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, 'echo: 4 messages, last user: Which requests failed?');
    assert.ok(chunks > 3);
    assert.ok(usage && usage.prompt_tokens > 0);
    const upstream = await stack.provider.only();
    assert.equal(upstream.body.stream, true);
    assert.deepEqual(upstream.body.stream_options, { include_usage: true });
    assertLosslessTable(upstream.body.messages[3].content);
    assert.equal(stats[0]?.applied, true);
  });

  test('tool calls: the model’s calls come back; the next turn goes out with every pair intact', async () => {
    const { client } = wrapped();
    await stack.provider.queueReply({ tool_calls: [['call_9', 'query', { q: 'errors', limit: 5 }]] });
    const first = await client.chat.completions.create({
      model: GPT,
      messages: chatHistory(),
      tools: [QUERY_TOOL],
    });
    const message = first.choices[0]!.message;
    assert.equal(first.choices[0]!.finish_reason, 'tool_calls');
    const call = message.tool_calls![0]!;
    assert.equal(call.id, 'call_9');
    assert.equal(call.type === 'function' && call.function.name, 'query');
    assert.deepEqual(call.type === 'function' && JSON.parse(call.function.arguments), {
      q: 'errors',
      limit: 5,
    });

    // Streamed tool calls assemble as usual.
    await stack.provider.queueReply({ tool_calls: [['call_10', 'query', { q: 'eu' }]] });
    const stream = await client.chat.completions.create({
      model: GPT,
      messages: chatHistory(),
      tools: [QUERY_TOOL],
      stream: true,
    });
    let args = '';
    let name = '';
    for await (const chunk of stream) {
      for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) {
        name += tc.function?.name ?? '';
        args += tc.function?.arguments ?? '';
      }
    }
    assert.equal(name, 'query');
    assert.deepEqual(JSON.parse(args), { q: 'eu' });

    await stack.provider.reset();
    const next = [
      ...chatHistory(),
      message,
      { role: 'tool' as const, tool_call_id: 'call_9', content: TOOL_TEXT },
    ];
    await client.chat.completions.create({ model: GPT, messages: next as any, tools: [QUERY_TOOL] });
    const sent = (await stack.provider.only()).body.messages as any[];
    assert.deepEqual(
      sent.map((m) => [m.role, m.tool_call_id ?? null, (m.tool_calls ?? []).map((c: any) => c.id)]),
      [
        ['system', null, []],
        ['user', null, []],
        ['assistant', null, ['c1']],
        ['tool', 'c1', []],
        ['assistant', null, ['call_9']],
        ['tool', 'call_9', []],
      ],
    );
    assertLosslessTable(sent[3].content);
    assertLosslessTable(sent[5].content);
  });

  test('withResponse(), and the SDK helpers built on create (parse, stream) are compressed too', async () => {
    const { client, stats } = wrapped();
    const { data, response } = await client.chat.completions
      .create({ model: GPT, messages: chatHistory() })
      .withResponse();
    assert.equal(data.choices[0]?.message.content, 'echo: 4 messages, last user: Which requests failed?');
    assert.equal(response.headers.get('x-request-id')?.startsWith('req_test'), true);
    const raw = await client.chat.completions.create({ model: GPT, messages: chatHistory() }).asResponse();
    assert.equal(raw.status, 200);

    const parsed = await client.chat.completions.parse({ model: GPT, messages: chatHistory() });
    assert.equal(parsed.choices[0]?.message.content, 'echo: 4 messages, last user: Which requests failed?');

    const runner = client.chat.completions.stream({ model: GPT, messages: chatHistory() });
    const final = await runner.finalChatCompletion();
    assert.equal(final.choices[0]?.message.content, 'echo: 4 messages, last user: Which requests failed?');

    const upstream = await stack.provider.requests();
    assert.equal(upstream.length, 4);
    for (const r of upstream) assertLosslessTable(r.body.messages[3].content);
    assert.equal(upstream[3]!.body.stream, true);
    assert.equal(stats.length, 4);
  });

  test('runTools: every round of the tool loop goes out compressed', async () => {
    const { client, stats } = wrapped();
    await stack.provider.queueReply({ tool_calls: [['call_3', 'query', { q: 'errors' }]] });
    const seen: unknown[] = [];
    const runner = client.chat.completions.runTools({
      model: GPT,
      messages: chatHistory(),
      tools: [
        {
          type: 'function',
          function: {
            name: 'query',
            description: 'Query the request log',
            parameters: { type: 'object', properties: { q: { type: 'string' } } },
            parse: JSON.parse,
            function: (args: unknown) => {
              seen.push(args);
              return TOOL_TEXT;
            },
          },
        },
      ],
    });
    assert.equal(await runner.finalContent(), 'echo: 6 messages, last user: Which requests failed?');
    assert.deepEqual(seen, [{ q: 'errors' }]);
    const upstream = await stack.provider.requests();
    assert.equal(upstream.length, 2);
    assertLosslessTable(upstream[0]!.body.messages[3].content);
    const second = upstream[1]!.body.messages as any[];
    assert.deepEqual(
      second.map((m) => m.tool_call_id ?? null),
      [null, null, null, 'c1', null, 'call_3'],
    );
    assertLosslessTable(second[3].content);
    assertLosslessTable(second[5].content);
    assert.equal(stats.length, 2);
  });

  test('the provider’s own errors reach the caller as the SDK raises them', async () => {
    const { client, warnings } = wrapped();
    await stack.provider.queueError(400, 'bad temperature');
    await assert.rejects(
      client.chat.completions.create({ model: GPT, messages: chatHistory() }),
      (err: unknown) => {
        assert.ok(err instanceof BadRequestError);
        assert.equal(err.status, 400);
        assert.match(err.message, /bad temperature/);
        return true;
      },
    );
    assert.deepEqual(warnings.messages, []);
  });
});

describe('openai: AzureOpenAI', () => {
  test('an Azure client’s deployment request goes out compressed', async () => {
    const azure = withHeadroom(
      new AzureOpenAI({
        apiKey: KEY,
        baseURL: stack.provider.openaiBaseUrl,
        apiVersion: '2024-10-21',
        maxRetries: 0,
      }),
      { baseUrl: stack.gate.url, timeoutMs: 30_000 },
    );
    // The fake provider has no Azure routes: it records the request, then answers 404.
    await assert.rejects(
      azure.chat.completions.create({ model: GPT, messages: chatHistory() }),
      NotFoundError,
    );
    const upstream = await stack.provider.only();
    assert.equal(upstream.path, `/v1/deployments/${GPT}/chat/completions?api-version=2024-10-21`);
    assert.equal(upstream.headers['api-key'], KEY);
    assertLosslessTable(upstream.body.messages[3].content);
    assert.deepEqual(
      stack.gate.seen.map((s) => s.url),
      ['/v1/compress'],
    );
    assert.ok(!JSON.stringify(stack.gate.seen).includes(KEY));
  });
});

describe('openai: everything else is the SDK’s own', () => {
  test('other methods and properties pass through, uncompressed, never via our server', async () => {
    const { client } = wrapped();
    const plain = sdk();
    assert.ok(client instanceof OpenAI);
    assert.equal(client.baseURL, plain.baseURL);
    assert.equal(client.apiKey, KEY);
    assert.equal(client.maxRetries, 0);
    // A low-level call the wrapper does not compress: the provider gets the body as given.
    const body = { model: GPT, messages: chatHistory() };
    const answer = await client.post<any>('/chat/completions', { body });
    assert.equal(answer.choices[0].message.content, 'echo: 4 messages, last user: Which requests failed?');
    // Another resource: the provider's 404 comes back through the SDK as usual.
    await assert.rejects(client.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' }), {
      status: 404,
    });
    const upstream = await stack.provider.requests();
    assert.deepEqual(
      upstream.map((r) => r.path),
      ['/v1/chat/completions', '/v1/embeddings'],
    );
    assert.deepEqual(upstream[0]!.body, body);
    assert.equal(upstream[1]!.headers.authorization, `Bearer ${KEY}`);
    assert.deepEqual(stack.gate.seen, []);
  });

  test('withOptions() gives a wrapped copy; wrapping twice does not compress twice', async () => {
    const { client, stats } = wrapped();
    const copy = client.withOptions({ timeout: 10_000 });
    await copy.chat.completions.create({ model: GPT, messages: chatHistory() });
    assertLosslessTable((await stack.provider.only()).body.messages[3].content);
    assert.equal(stats.length, 1);

    const twice = withHeadroom(client, { baseUrl: stack.gate.url, timeoutMs: 30_000 });
    await stack.provider.reset();
    await twice.chat.completions.create({ model: GPT, messages: chatHistory() });
    assert.equal(stack.gate.seen.filter((s) => s.url === '/v1/compress').length, 2);
    assert.equal(stats.length, 1); // the second wrapper has its own options (no callback)
  });
});

describe('openai: options', () => {
  test('the provider key never goes to our server', async () => {
    const { client } = wrapped();
    await client.chat.completions.create({ model: GPT, messages: chatHistory() });
    assert.equal(stack.gate.seen.length, 1);
    const seen = stack.gate.seen[0]!;
    assert.equal(seen.url, '/v1/compress');
    assert.equal(seen.headers.authorization, undefined);
    assert.ok(!JSON.stringify(seen).includes(KEY), 'the key appears in what our server received');
    assert.ok(!JSON.stringify(seen).includes(KEY.slice(-10)));
    assert.equal((await stack.provider.only()).headers.authorization, `Bearer ${KEY}`);
  });

  test('mode off: nothing is sent to our server, the request goes out as given', async () => {
    const { client, stats } = wrapped({ mode: 'off' });
    await client.chat.completions.create({ model: GPT, messages: chatHistory() });
    assert.deepEqual(stack.gate.seen, []);
    assert.deepEqual((await stack.provider.only()).body.messages, chatHistory());
    assert.deepEqual(stats, []);
  });

  test('mode audit: the request goes out as given, the stats say what optimize would save', async () => {
    const { client, stats } = wrapped({ mode: 'audit' });
    await client.chat.completions.create({ model: GPT, messages: chatHistory() });
    assert.deepEqual((await stack.provider.only()).body.messages, chatHistory());
    assert.equal(stats.length, 1);
    assert.equal(stats[0]!.mode, 'audit');
    assert.equal(stats[0]!.applied, false);
    assert.ok(stats[0]!.tokensSaved > 5000);
  });

  test('model targets another context window; frozenMessageCount keeps a prefix byte-identical', async () => {
    const { client } = wrapped({ model: 'gpt-4o', frozenMessageCount: 4 });
    await client.chat.completions.create({ model: GPT, messages: chatHistory() });
    const sent = JSON.parse(stack.gate.seen[0]!.body);
    assert.equal(sent.model, 'gpt-4o');
    assert.deepEqual(sent.config, { frozen_message_count: 4 });
    const upstream = await stack.provider.only();
    assert.equal(upstream.body.model, GPT);
    assert.deepEqual(upstream.body.messages, chatHistory()); // the tool result is in the frozen prefix
  });

  test('an onCompressed that throws is logged once and never breaks the call', async () => {
    const warnings = new Warnings();
    const client = withHeadroom(sdk(), {
      baseUrl: stack.gate.url,
      timeoutMs: 30_000,
      logger: warnings,
      onCompressed: () => {
        throw new Error('observer bug');
      },
    });
    for (let i = 0; i < 2; i++) {
      const reply = await client.chat.completions.create({ model: GPT, messages: chatHistory() });
      assert.equal(reply.choices[0]?.message.content, 'echo: 4 messages, last user: Which requests failed?');
    }
    assert.equal(warnings.messages.length, 1);
    assert.match(warnings.messages[0]!, /onCompressed threw \(Error: observer bug\)/);
    for (const r of await stack.provider.requests()) assertLosslessTable(r.body.messages[3].content);
  });

  test('HEADROOM_BASE_URL is the default baseUrl', async () => {
    process.env.HEADROOM_BASE_URL = stack.gate.url;
    try {
      const client = withHeadroom(sdk(), { timeoutMs: 30_000 });
      await client.chat.completions.create({ model: GPT, messages: chatHistory() });
    } finally {
      delete process.env.HEADROOM_BASE_URL;
    }
    assert.deepEqual(
      stack.gate.seen.map((s) => s.url),
      ['/v1/compress'],
    );
    assertLosslessTable((await stack.provider.only()).body.messages[3].content);
  });

  test('nothing to compress: an empty messages list goes straight to the provider', async () => {
    const { client, stats } = wrapped();
    await client.chat.completions.create({ model: GPT, messages: [] });
    assert.deepEqual(stack.gate.seen, []);
    assert.deepEqual((await stack.provider.only()).body, { model: GPT, messages: [] });
    assert.deepEqual(stats, []);
  });
});
