/** withHeadroom's argument checks (no server needed). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';
import OpenAI, { AzureOpenAI } from 'openai';
import { withHeadroom } from 'headroom-context';

const openai = () => new OpenAI({ apiKey: 'k', baseURL: 'http://127.0.0.1:9/v1' });

describe('withHeadroom arguments', () => {
  test('a bad option throws a TypeError naming it', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ mode: 'fast' }, /options\.mode must be one of 'optimize', 'audit', 'off' \(got 'fast'\)/],
      [{ timeoutMs: 0 }, /options\.timeoutMs must be a positive number/],
      [{ timeoutMs: Number.NaN }, /options\.timeoutMs/],
      [{ frozenMessageCount: 1.5 }, /options\.frozenMessageCount must be an integer >= 0/],
      [{ baseUrl: 'localhost:8787' }, /options\.baseUrl must be an http\(s\) URL/],
      [{ baseUrl: '' }, /options\.baseUrl must be a non-empty string/],
      [{ model: 3 }, /options\.model must be a non-empty string/],
      [{ onCompressed: 'yes' }, /options\.onCompressed must be a function/],
      [{ logger: {} }, /options\.logger must be an object with a warn/],
    ];
    for (const [options, message] of cases) {
      assert.throws(() => withHeadroom(openai(), options as any), { name: 'TypeError', message });
    }
  });

  test('a client that is neither SDK is refused', () => {
    assert.throws(() => withHeadroom({ chat: {} }), /expected an OpenAI \/ AzureOpenAI client/);
    assert.throws(() => withHeadroom({}), TypeError);
  });

  test('OpenAI, AzureOpenAI and Anthropic clients are accepted and keep their class', () => {
    const azure = new AzureOpenAI({ apiKey: 'k', endpoint: 'http://127.0.0.1:9', apiVersion: '2024-10-21' });
    assert.ok(withHeadroom(azure) instanceof AzureOpenAI);
    assert.ok(withHeadroom(openai()) instanceof OpenAI);
    assert.ok(withHeadroom(new Anthropic({ apiKey: 'k' })) instanceof Anthropic);
  });

  test('the same method object each time (a stable pass-through)', () => {
    const client = withHeadroom(openai());
    assert.equal(client.chat.completions.create, client.chat.completions.create);
    assert.equal(client.chat, client.chat);
    assert.equal(client.models.list, client.models.list);
    assert.equal(client.post, client.post);
  });
});
