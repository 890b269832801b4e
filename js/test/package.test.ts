/** The published shape: ESM and CommonJS entry points with declarations, no runtime dependency. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import * as esm from 'headroom-context';

import { JS_ROOT } from './helpers/processes.js';

const pkg = JSON.parse(readFileSync(join(JS_ROOT, 'package.json'), 'utf8'));

describe('package', () => {
  test('import and require give the same API', () => {
    const cjs = createRequire(import.meta.url)('headroom-context');
    assert.deepEqual(Object.keys(cjs).sort(), Object.keys(esm).sort());
    assert.deepEqual(Object.keys(esm).sort(), [
      'DEFAULT_BASE_URL',
      'DEFAULT_TIMEOUT_MS',
      'MODES',
      'withHeadroom',
    ]);
    assert.equal(typeof cjs.withHeadroom, 'function');
    assert.notEqual(cjs.withHeadroom, esm.withHeadroom); // two builds, really
    assert.equal(cjs.DEFAULT_BASE_URL, 'http://localhost:8787');
  });

  test('each build has its declarations and its module format', () => {
    for (const [condition, format] of [
      ['import', 'module'],
      ['require', 'commonjs'],
    ] as const) {
      const entry = pkg.exports['.'][condition];
      const types = readFileSync(join(JS_ROOT, entry.types), 'utf8');
      assert.match(types, /withHeadroom/);
      const code = readFileSync(join(JS_ROOT, entry.default), 'utf8');
      assert.equal(
        /\bexports\.withHeadroom\b|Object\.defineProperty\(exports/.test(code),
        format === 'commonjs',
      );
    }
    const declared = readFileSync(join(JS_ROOT, 'dist/esm/wrap.d.ts'), 'utf8');
    assert.match(
      declared,
      /export declare function withHeadroom<T extends object>\(client: T, options\?: HeadroomOptions\): T;/,
    );
  });

  test('no runtime dependency; the SDKs are optional peers', () => {
    assert.equal(pkg.dependencies, undefined);
    assert.deepEqual(Object.keys(pkg.peerDependencies).sort(), ['@anthropic-ai/sdk', 'openai']);
    assert.equal(pkg.peerDependenciesMeta.openai.optional, true);
    let imports = 0;
    for (const build of ['dist/esm', 'dist/cjs']) {
      for (const file of readdirSync(join(JS_ROOT, build)).filter((f) => f.endsWith('.js'))) {
        const code = readFileSync(join(JS_ROOT, build, file), 'utf8');
        // Only relative imports: nothing from node_modules, no node: builtins.
        const specifiers = [
          ...code.matchAll(/^import .* from ['"]([^'"]+)['"]|require\(['"]([^'"]+)['"]\)/gm),
        ].map((m) => m[1] ?? m[2]);
        assert.ok(
          specifiers.every((s) => s!.startsWith('./')),
          `${build}/${file}: ${specifiers}`,
        );
        imports += specifiers.length;
      }
    }
    assert.ok(imports >= 10, `${imports} imports read`);
  });
});
