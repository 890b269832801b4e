/**
 * withHeadroom() around the real `@anthropic-ai/sdk` client, against the real Headroom server
 * in front of the fake provider.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';
import { type HeadroomOptions } from 'headroom-context';

import { assertLosslessTable, CLAUDE, claudeHistory, KEY, TOOL_TEXT } from './helpers/data.js';
import { serverAnswer, useStack, wrapForTest } from './helpers/stack.js';

const stack = useStack();
const ECHO = 'echo: 3 messages, last user: ';

function sdk(): Anthropic {
  return new Anthropic({ apiKey: KEY, baseURL: stack.provider.baseUrl, maxRetries: 0 });
}

function wrapped(extra: HeadroomOptions = {}): ReturnType<typeof wrapForTest<Anthropic>> {
  return wrapForTest(stack, sdk(), extra);
}

/** The tool_result text of the third message of a Claude history as sent. */
function resultText(messages: any[]): string {
  const block = messages[2].content[0];
  assert.equal(block.type, 'tool_result');
  assert.equal(block.tool_use_id, 'tu1');
  return typeof block.content === 'string' ? block.content : block.content[0].text;
}

/** The provider key as the SDK sends it (x-api-key, or Authorization: Bearer in 1.x). */
function keyOf(headers: Record<string, string | undefined>): string | undefined {
  return headers['x-api-key'] ?? headers.authorization?.replace(/^Bearer /, '');
}

const TOOLS = [
  {
    name: 'query',
    description: 'Query the request log',
    input_schema: { type: 'object' as const, properties: {} },
  },
];

describe('anthropic: messages.create', () => {
  test('the provider receives the messages /v1/compress answered; system and the rest as sent', async () => {
    const { client, stats, warnings } = wrapped();
    const body = {
      model: CLAUDE,
      max_tokens: 256,
      system: 'You are an SRE assistant.',
      messages: claudeHistory(),
      tools: TOOLS,
    };
    const message = await client.messages.create(body);

    const upstream = await stack.provider.only();
    const expected = await serverAnswer(stack, {
      model: CLAUDE,
      system: body.system,
      messages: claudeHistory(),
    });
    assert.deepEqual(upstream.body.messages, expected.messages);
    assert.deepEqual({ ...upstream.body, messages: undefined }, { ...body, messages: undefined });
    assert.equal(keyOf(upstream.headers), KEY);
    assert.deepEqual(upstream.body.messages.slice(0, 2), claudeHistory().slice(0, 2));
    assertLosslessTable(resultText(upstream.body.messages));
    assert.deepEqual(message.content, [{ type: 'text', text: ECHO }]);
    assert.equal(stats.length, 1);
    assert.equal(stats[0]!.api, 'messages.create');
    assert.equal(stats[0]!.tokensBefore, expected.tokens_before);
    assert.equal(stats[0]!.tokensAfter, expected.tokens_after);
    assert.deepEqual(warnings.messages, []);
  });

  test('a request without system goes out without one', async () => {
    const { client } = wrapped();
    await client.messages.create({ model: CLAUDE, max_tokens: 256, messages: claudeHistory() });
    const upstream = await stack.provider.only();
    assert.equal('system' in upstream.body, false);
    assertLosslessTable(resultText(upstream.body.messages));
    assert.equal(JSON.parse(stack.gate.seen[0]!.body).system, null);
  });

  test('stream: true gives the SDK’s event stream; the request went out compressed', async () => {
    const { client } = wrapped();
    const stream = await client.messages.create({
      model: CLAUDE,
      max_tokens: 256,
      messages: claudeHistory(),
      stream: true,
    });
    const kinds: string[] = [];
    let text = '';
    for await (const event of stream) {
      kinds.push(event.type);
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
    }
    assert.equal(text, ECHO);
    assert.equal(kinds[0], 'message_start');
    assert.equal(kinds.at(-1), 'message_stop');
    const upstream = await stack.provider.only();
    assert.equal(upstream.body.stream, true);
    assertLosslessTable(resultText(upstream.body.messages));
  });

  test('messages.stream(): text events and the final message; compressed; tool use streamed', async () => {
    const { client, stats } = wrapped();
    const stream = client.messages.stream({ model: CLAUDE, max_tokens: 256, messages: claudeHistory() });
    let text = '';
    stream.on('text', (delta) => {
      text += delta;
    });
    const final = await stream.finalMessage();
    assert.equal(text, ECHO);
    assert.deepEqual(
      final.content.map((b) => b.type === 'text' && b.text),
      [ECHO],
    );
    assert.equal(stats.length, 1);
    assertLosslessTable(resultText((await stack.provider.only()).body.messages));

    await stack.provider.queueReply({ tool_calls: [['tu2', 'query', { q: 'errors' }]] });
    const tools = client.messages.stream({
      model: CLAUDE,
      max_tokens: 256,
      messages: claudeHistory(),
      tools: TOOLS,
    });
    const withTool = await tools.finalMessage();
    assert.equal(withTool.stop_reason, 'tool_use');
    const use = withTool.content.find((b) => b.type === 'tool_use');
    assert.ok(use && use.type === 'tool_use');
    assert.equal(use.id, 'tu2');
    assert.deepEqual(use.input, { q: 'errors' });
  });

  test('messages.parse() is compressed too', async () => {
    const { client, stats } = wrapped();
    const parsed = await client.messages.parse({ model: CLAUDE, max_tokens: 256, messages: claudeHistory() });
    assert.deepEqual(
      parsed.content.map((b) => b.type === 'text' && b.text),
      [ECHO],
    );
    assertLosslessTable(resultText((await stack.provider.only()).body.messages));
    assert.equal(stats.length, 1);
  });

  test('tool calls: tool_use comes back; the next turn goes out with every pair intact', async () => {
    const { client } = wrapped();
    await stack.provider.queueReply({
      text: 'Let me look.',
      tool_calls: [['tu2', 'query', { q: 'errors' }]],
    });
    const first = await client.messages.create({
      model: CLAUDE,
      max_tokens: 256,
      messages: claudeHistory(),
      tools: TOOLS,
    });
    assert.equal(first.stop_reason, 'tool_use');
    assert.deepEqual(
      first.content.map((b) => b.type),
      ['text', 'tool_use'],
    );

    await stack.provider.reset();
    const next = [
      ...claudeHistory(),
      { role: 'assistant' as const, content: first.content },
      {
        role: 'user' as const,
        content: [{ type: 'tool_result' as const, tool_use_id: 'tu2', content: TOOL_TEXT }],
      },
    ];
    await client.messages.create({ model: CLAUDE, max_tokens: 256, messages: next as any, tools: TOOLS });
    const sent = (await stack.provider.only()).body.messages as any[];
    const shape = sent.map((m) => [
      m.role,
      typeof m.content === 'string'
        ? 'text'
        : m.content.map((b: any) => `${b.type}:${b.id ?? b.tool_use_id ?? ''}`).join(','),
    ]);
    assert.deepEqual(shape, [
      ['user', 'text'],
      ['assistant', 'tool_use:tu1'],
      ['user', 'tool_result:tu1'],
      ['assistant', 'text:,tool_use:tu2'],
      ['user', 'tool_result:tu2'],
    ]);
    assertLosslessTable(resultText(sent));
    const last = sent[4].content[0];
    assertLosslessTable(typeof last.content === 'string' ? last.content : last.content[0].text);
    assert.deepEqual(sent[3].content, JSON.parse(JSON.stringify(first.content)));
  });
});

describe('anthropic: everything else is the SDK’s own', () => {
  test('countTokens and other methods pass through, uncompressed, never via our server', async () => {
    const { client } = wrapped();
    assert.ok(client instanceof Anthropic);
    assert.equal(client.apiKey, KEY);
    assert.equal(client.baseURL, stack.provider.baseUrl);
    const counted = await client.messages.countTokens({ model: CLAUDE, messages: claudeHistory() });
    assert.ok(counted.input_tokens > TOOL_TEXT.length / 4 - 1, `${counted.input_tokens}`);
    const upstream = await stack.provider.only();
    assert.equal(upstream.path, '/v1/messages/count_tokens');
    assert.deepEqual(upstream.body.messages, claudeHistory());
    await assert.rejects(client.models.list(), { status: 404 });
    assert.deepEqual(stack.gate.seen, []);
  });

  test('the provider key never goes to our server', async () => {
    const { client } = wrapped();
    await client.messages.create({ model: CLAUDE, max_tokens: 256, messages: claudeHistory() });
    assert.equal(stack.gate.seen.length, 1);
    const seen = JSON.stringify(stack.gate.seen[0]);
    assert.ok(!seen.includes(KEY) && !seen.includes(KEY.slice(-10)), 'the key reached our server');
    assert.equal(keyOf(stack.gate.seen[0]!.headers as Record<string, string>), undefined);
    assert.equal(keyOf((await stack.provider.only()).headers), KEY);
  });
});
