/** README's JavaScript examples are the files in examples/, which `tsc --noEmit` type-checks. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { JS_ROOT, REPO_ROOT } from './helpers/processes.js';

function lines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

test('every ts block of the README JavaScript section is in an examples/ file, line for line', () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('## JavaScript / TypeScript');
  assert.ok(start >= 0, 'README has no JavaScript / TypeScript section');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const blocks = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => lines(m[1]!));
  assert.equal(blocks.length, 3);
  const examples = readdirSync(join(JS_ROOT, 'examples')).map((f) =>
    lines(readFileSync(join(JS_ROOT, 'examples', f), 'utf8')).join('\n'),
  );
  for (const block of blocks) {
    assert.ok(
      examples.some((e) => e.includes(block.join('\n'))),
      `this README block is in no examples/ file:\n${block.join('\n')}`,
    );
  }
});
