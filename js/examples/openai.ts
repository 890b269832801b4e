// README "JavaScript / TypeScript": type-checked by `npx tsc --noEmit`; test/readme.test.ts
// checks that every ts block of that README section is in one of these files.
import OpenAI from 'openai';
import { withHeadroom } from 'headroom-context';

const client = withHeadroom(new OpenAI(), {
  model: 'gpt-4o', // the context window to target (default: each request's model)
  baseUrl: 'http://localhost:8787', // `headroom serve`
  onCompressed: (s) => console.log(`saved ${s.tokensSaved} of ${s.tokensBefore} tokens`),
});

// Compressed by the server, then sent with your client and your key, as usual.
const response = await client.chat.completions.create({
  model: 'gpt-4o',
  messages: longConversation,
});

// Streaming: the request is compressed before it goes out; chunks arrive as usual.
const stream = await client.chat.completions.create({
  model: 'gpt-4o',
  messages: longConversation,
  stream: true,
});
for await (const chunk of stream) {
  process.stdout.write(chunk.choices[0]?.delta?.content ?? '');
}

// Tool calls and their results stay paired; large tool outputs are where the savings are.
const answer = await client.chat.completions.create({
  model: 'gpt-4o',
  messages: [
    { role: 'user', content: 'Search for recent errors' },
    {
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: 'call_1', type: 'function', function: { name: 'search', arguments: '{"q":"errors"}' } },
      ],
    },
    { role: 'tool', tool_call_id: 'call_1', content: hugeJsonResult },
  ],
  tools: [{ type: 'function', function: { name: 'search', parameters: {} } }],
});

// Everything else is the SDK's own, uncompressed.
const embedding = await client.embeddings.create({
  model: 'text-embedding-3-small',
  input: 'Hello world',
});
console.log(response, answer, embedding);

// What the README leaves to the reader.
declare const longConversation: OpenAI.ChatCompletionMessageParam[];
declare const hugeJsonResult: string;
