// README "JavaScript / TypeScript" (see examples/openai.ts); test/langchain.test.ts runs the same setup.
import { HumanMessage } from '@langchain/core/messages';
import { ChatOpenAI, ChatOpenAICompletions } from '@langchain/openai';
import OpenAI from 'openai';
import { withHeadroom } from 'headroom-context';

// ChatOpenAI has no client option, but its Chat Completions half has a public `client`
// field, and ChatOpenAI takes that half as `completions` (bindTools / withConfig keep it).
const completions = new ChatOpenAICompletions({ model: 'gpt-4o' });
completions.client = withHeadroom(new OpenAI(), { baseUrl: 'http://localhost:8787' });
const model = new ChatOpenAI({ model: 'gpt-4o', completions });

const reply = await model.invoke([new HumanMessage('Summarise the incident')]);
console.log(reply.content);
