/**
 * The README's LangChain.js example: ChatOpenAI's Chat Completions client wrapped by
 * withHeadroom (ChatOpenAI takes no client option; its `completions` part does, as a field).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { AIMessage, HumanMessage, SystemMessage, ToolMessage } from '@langchain/core/messages';
import { ChatOpenAI, ChatOpenAICompletions } from '@langchain/openai';
import OpenAI from 'openai';
import { type CompressionStats, withHeadroom } from 'headroom-context';

import { GPT, KEY, QUERY_TOOL, TOOL_TEXT } from './helpers/data.js';
import { useStack } from './helpers/stack.js';

const stack = useStack();

function history() {
  return [
    new SystemMessage('You are an SRE assistant.'),
    new HumanMessage('Which requests failed?'),
    new AIMessage({ content: '', tool_calls: [{ id: 'c1', name: 'query', args: {} }] }),
    new ToolMessage({ tool_call_id: 'c1', content: TOOL_TEXT }),
  ];
}

function model(stats: CompressionStats[]): ChatOpenAI {
  // As in README: the chat model's Chat Completions client is the wrapped one.
  const completions = new ChatOpenAICompletions({ model: GPT, apiKey: KEY });
  completions.client = withHeadroom(
    new OpenAI({ apiKey: KEY, baseURL: stack.provider.openaiBaseUrl, maxRetries: 0 }),
    { baseUrl: stack.gate.url, timeoutMs: 30_000, onCompressed: (s) => stats.push(s) },
  );
  return new ChatOpenAI({ model: GPT, apiKey: KEY, completions });
}

function toolContent(body: Record<string, any>): string {
  const tool = (body.messages as any[]).find((m) => m.role === 'tool');
  assert.equal(tool.tool_call_id, 'c1');
  return tool.content;
}

describe('LangChain.js ChatOpenAI over a wrapped client', () => {
  test('invoke, stream and bindTools all go out compressed', async () => {
    const stats: CompressionStats[] = [];
    const chat = model(stats);
    const reply = await chat.invoke(history());
    assert.equal(reply.content, 'echo: 4 messages, last user: Which requests failed?');

    let streamed = '';
    for await (const chunk of await chat.stream(history())) streamed += chunk.content as string;
    assert.equal(streamed, 'echo: 4 messages, last user: Which requests failed?');

    await stack.provider.queueReply({ tool_calls: [['call_7', 'query', { q: 'errors' }]] });
    const withTools = chat.bindTools([QUERY_TOOL]);
    const call = await withTools.invoke(history());
    assert.deepEqual(
      call.tool_calls?.map((c) => [c.id, c.name, c.args]),
      [['call_7', 'query', { q: 'errors' }]],
    );

    const upstream = await stack.provider.requests();
    assert.equal(upstream.length, 3);
    for (const r of upstream) {
      assert.ok(toolContent(r.body).length < TOOL_TEXT.length / 3);
      assert.equal(r.headers.authorization, `Bearer ${KEY}`);
    }
    assert.equal(upstream[1]!.body.stream, true);
    assert.deepEqual(
      upstream[2]!.body.tools.map((t: any) => t.function.name),
      ['query'],
    );
    assert.equal(stats.length, 3);
    assert.ok(stats.every((s) => s.applied && s.tokensSaved > 5000));
  });
});
