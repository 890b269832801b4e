// README "JavaScript / TypeScript" (see examples/openai.ts).
import Anthropic from '@anthropic-ai/sdk';
import { withHeadroom } from 'headroom-context';

const claude = withHeadroom(new Anthropic(), { timeoutMs: 2000 });

const message = await claude.messages.create({
  model: 'claude-sonnet-4-5',
  max_tokens: 1024,
  system: 'You are an SRE assistant.',
  messages: history, // tool_use / tool_result blocks included
});

const stream = claude.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 1024, messages: history });
stream.on('text', (text) => process.stdout.write(text));
const final = await stream.finalMessage();
console.log(message, final);

// What the README leaves to the reader.
declare const history: Anthropic.MessageParam[];
