/** Conversations the tests send: a tool call whose result is 200 pretty-printed rows. */
import assert from 'node:assert/strict';

export const GPT = 'gpt-4o-mini';
export const CLAUDE = 'claude-haiku-4-5';
/** The provider key: it must reach the provider and never our server. */
export const KEY = 'sk-test-SECRET-4f9a1c77e2';

export const ROWS = Array.from({ length: 200 }, (_, i) => ({
  id: i,
  status: i % 13 ? 'ok' : 'error',
  region: 'eu-west-1',
  latency_ms: 40 + i,
}));
export const TOOL_TEXT = JSON.stringify(ROWS, null, 2);

export const QUERY_TOOL = {
  type: 'function' as const,
  function: {
    name: 'query',
    description: 'Query the request log',
    parameters: { type: 'object', properties: {} },
  },
};

export function chatHistory(): any[] {
  return [
    { role: 'system', content: 'You are an SRE assistant.' },
    { role: 'user', content: 'Which requests failed?' },
    {
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'c1', type: 'function', function: { name: 'query', arguments: '{}' } }],
    },
    { role: 'tool', tool_call_id: 'c1', content: TOOL_TEXT },
  ];
}

export function claudeHistory(): any[] {
  return [
    { role: 'user', content: 'Which requests failed?' },
    { role: 'assistant', content: [{ type: 'tool_use', id: 'tu1', name: 'query', input: {} }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'tu1', content: TOOL_TEXT }] },
  ];
}

/** Warnings a wrapped client logged. */
export class Warnings {
  readonly messages: string[] = [];
  warn = (message: string): void => {
    this.messages.push(message);
  };
}

/** The table form the server sends instead of the rows: every row still there, same values. */
export function assertLosslessTable(content: string): void {
  assert.ok(
    content.length < TOOL_TEXT.length / 3,
    `compressed: ${content.length} of ${TOOL_TEXT.length} chars`,
  );
  const [head, ...rows] = JSON.parse(content) as [Record<string, any>, ...unknown[][]];
  assert.deepEqual(head.__headroom_cols, ['id', 'status', 'region', 'latency_ms']);
  assert.deepEqual(head.__headroom_const, { region: 'eu-west-1' });
  assert.deepEqual(
    rows,
    ROWS.map((r) => [r.id, r.status, r.latency_ms]),
  );
}
