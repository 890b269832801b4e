"""CodeCompressor: outline source code, elide function bodies, keep what the query names."""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headroom_core.ccr import MemoryOriginalStore
from headroom_core.config import SmartCrusherConfig
from headroom_core.tokens import count_tokens_text
from headroom_core.transforms import _code_treesitter
from headroom_core.transforms._code_generic import mask
from headroom_core.transforms._code_outline import MARKER_RE, parse_query
from headroom_core.transforms._content import Compressed, ContentContext
from headroom_core.transforms.code_compressor import CodeCompressor, guess_language

PY = '''\
"""Module docstring: a tiny HTTP helper."""

from __future__ import annotations

import json
import os

TIMEOUT = 30


def parse_headers(raw: str) -> dict[str, str]:
    """Split raw header text into a dict."""
    out = {}
    for line in raw.splitlines():
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        out[key.strip().lower()] = value.strip()
    return out


class Client:
    """A client."""

    retries = 3

    def __init__(self, base: str) -> None:
        self.base = base

    @property
    def url(self) -> str:
        return self.base + "/"

    async def fetch(
        self,
        path: str,
        *,
        timeout: int = TIMEOUT,
    ) -> bytes:
        """Fetch ``path``."""
        # build the request
        target = os.path.join(self.base, path)
        body = json.dumps({"path": target, "timeout": timeout})
        for attempt in range(self.retries):
            data = await self._send(body, attempt)
            if data:
                return data
        raise RuntimeError(f"no answer from {target} after {self.retries} tries")

    def close(self) -> None:
        """Close the client and forget its base."""
        for attempt in range(self.retries):
            self._drain(attempt, reason="closing the client now")
            self._log("drained one more pending request", attempt)
        self.base = ""
        self.retries = 0
        self.closed = True
'''

JS = """\
'use strict';

const path = require('path');

/**
 * Build a route. Braces in comments: { { {
 */
function buildRoute(name, opts) {
  const open = '{';        // a brace in a string
  const tpl = `route ${name} { ${opts.x + "}"} }`;
  const re = /[{]+\\}/g;
  if (re.test(name)) {
    return open + tpl + path.join(opts.base, name, 'index.html');
  }
  /* } block comment } */
  return name.replace(re, "}") + path.join(opts.base, name, 'index.html');
}

module.exports = function createApp(options) {
  const routes = [];
  function onerror(err) {
    console.error('the application failed while handling a request', err);
    routes.length = 0;
    options.onerror(err, routes, 'createApp', path.basename(options.base));
    return err;
  }
  routes.push(buildRoute('x', options), buildRoute('y', options));
  routes.forEach(function (route) {
    console.log('registered route', route, 'for application', options.name);
  });
  return { routes: routes, onerror: onerror, base: path.resolve(options.base) };
};
"""

GO = """\
package demo

import (
	"fmt"
	"strings"
)

// Config holds settings.
type Config struct {
	Name string
	Tags []string
}

// Parse reads a config from s. Braces in strings: "{" and `}`.
func Parse(s string) (*Config, error) {
	c := &Config{}
	for _, part := range strings.Split(s, ";") {
		if part == "{" || part == `}` {
			continue
		}
		c.Tags = append(c.Tags, strings.ToLower(strings.TrimSpace(part)))
	}
	c.Name = strings.TrimSpace(s)
	return c, nil
}

// Done closes a channel once the name is printed.
func (c *Config) Done() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		fmt.Println("config", c.Name, "is done with", len(c.Tags), "tags")
		fmt.Println("closing the channel of", c.Name, "now")
		close(ch)
	}()
	return ch
}

func (c *Config) String() string { return c.Name }
"""

TS = """\
import type { Route } from './types';

export interface Options {
  base: string;
  verbose: boolean;
}

export function mount(routes: Route[], options: Options): number {
  let mounted = 0;
  for (const route of routes) {
    if (options.verbose) {
      console.log(`mounting ${route.path} at ${options.base} (route ${mounted + 1})`);
    }
    mounted += 1;
  }
  console.log(`mounted ${mounted} routes under ${options.base} in verbose mode`);
  return mounted;
}

export const unmount = async (routes: Route[], options: Options): Promise<void> => {
  for (const route of routes) {
    await route.close({ base: options.base, reason: 'unmount requested by caller' });
    console.log(`unmounted ${route.path} from ${options.base}`);
  }
};
"""

JAVA = """\
package demo.app;

import java.util.List;
import java.util.ArrayList;

public class Registry {
    private final List<String> names = new ArrayList<>();

    @Override
    public void add(String name) throws IllegalArgumentException {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("name must not be empty, got: " + name);
        }
        for (String existing : names) {
            if (existing.equalsIgnoreCase(name.trim())) {
                throw new IllegalStateException("duplicate name in the registry: " + name);
            }
        }
        names.add(name.trim());
    }

    public int size() {
        return names.size();
    }
}
"""

RUST = """\
use std::collections::HashMap;

pub struct Cache<'a> {
    items: HashMap<&'a str, u32>,
}

impl<'a> Cache<'a> {
    pub fn get(&self, key: &'a str) -> Option<u32> {
        let found = self.items.get(key).copied();
        if found.is_none() {
            println!("cache miss for key {} among {} items", key, self.items.len());
        }
        let quote = '"';
        println!("looked up {}{}{} in the cache", quote, key, quote);
        found
    }
}
"""

JSX = """\
import React, { useState, useEffect } from 'react';

export default function TrajectoryView({ items, onSelect }) {
  const [open, setOpen] = useState(false);
  const [filter, setFilter] = useState('');

  const handleClick = (item) => {
    setOpen(!open);
    onSelect(item);
    console.log('clicked the item with the id', item.id, 'while open was', open);
    console.log("it's selected now and the filter is", filter);
  };

  useEffect(() => {
    const timer = setInterval(() => setFilter(''), 1000);
    console.log('the view mounted with', items.length, 'items to show to the user');
    return () => clearInterval(timer);
  }, [items]);

  return (
    <div className="trajectory">
      <p>Don't click {open ? 'twice' : 'once'} {"}"}</p>
      {items.map((item) => (
        <button key={item.id} onClick={() => handleClick(item)}>
          {item.label}
        </button>
      ))}
    </div>
  );
}
"""

C_ALLMAN = """\
#include <stdio.h>
#include "match.h"

static int count_cases(const char* text, int limit)
{
  int n = 0;
  for (const char* p = text; *p != '\\0'; p++)
  {
    if (*p == '{' || *p == '}')
      n++;
    if (n > limit)
      return -1;
  }
  printf("counted %d braces in the text of the match expression\\n", n);
  return n;
}

int main(int argc, char** argv)
{
  if (argc < 2)
  {
    fprintf(stderr, "usage: %s TEXT (the text of the match expression)\\n", argv[0]);
    return 2;
  }
  printf("%d cases found in the match expression that was given\\n", count_cases(argv[1], 100));
  return 0;
}
"""

JSON_TEXT = '[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]\n'
LOG_TEXT = "".join(
    f"2024-05-01 12:00:{i:02d} INFO worker-{i % 3} processed job {i} in {i * 7} ms\n"
    for i in range(40)
)
PROSE = (
    "It was a bright cold day in April, and the clocks were striking thirteen. Call me\n"
    "Ishmael. Some years ago, never mind how long precisely, having little or no money\n"
    "in my purse, and nothing particular to interest me on shore, I thought I would sail\n"
    "about a little and see the watery part of the world. It is a way I have of driving\n"
    "off the spleen and regulating the circulation; whenever it is a damp November.\n"
)


def _ctx(
    query: str | None = None,
    *,
    store: MemoryOriginalStore | None = None,
    min_tokens: int = 0,
) -> ContentContext:
    return ContentContext(
        count=count_tokens_text,
        config=SmartCrusherConfig(min_tokens_to_crush=min_tokens),
        store=store if store is not None else MemoryOriginalStore(),
        query=query,
        tool_name="read_file",
    )


def _compress(text: str, query: str | None = None) -> Compressed:
    result = CodeCompressor().compress(text, _ctx(query))
    assert result is not None, "expected the text to be compressed"
    return result


def _assert_kept_in_order(original: str, output: str) -> None:
    """Every output line is a marker or an original line, in the original order."""
    lines = original.split("\n")
    cursor = 0
    for line in output.split("\n"):
        if MARKER_RE.search(line):
            continue
        try:
            cursor = lines.index(line, cursor) + 1
        except ValueError:
            pytest.fail(f"line not in the original (or out of order): {line!r}")


def _markers(text: str) -> list[str]:
    return [line for line in text.split("\n") if MARKER_RE.search(line)]


@pytest.fixture(params=["tree-sitter", "braces"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run brace-language tests with the tree-sitter planner and with brace matching."""
    if request.param == "tree-sitter":
        if not _code_treesitter.is_available():
            pytest.skip("tree-sitter grammars not installed (extra `code`)")
    else:
        monkeypatch.setattr(_code_treesitter, "is_available", lambda language=None: False)
    return str(request.param)


# ---------------------------------------------------------------------------- detect


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (PY, "python"), (JS, "javascript"), (GO, "go"), (TS, "typescript"), (JAVA, "java"),
        (RUST, "rust"), (JSX, "javascript"), (C_ALLMAN, "c"),
    ],
)  # fmt: skip
def test_detect_accepts_source_code(text: str, language: str) -> None:
    assert CodeCompressor().detect(text) is True
    assert guess_language(text.split("\n")) == language


MARKDOWN = f"# Usage\n\n{PROSE}\n```python\n{PY[:400]}\n```\n\n{PROSE}"
DIFF = "diff --git a/app.js b/app.js\n--- a/app.js\n+++ b/app.js\n@@ -8,7 +8,7 @@\n" + "".join(
    f"{'+-'[i % 2]}{line}\n" for i, line in enumerate(JS.split("\n")[7:20])
)


@pytest.mark.parametrize(
    "text",
    [JSON_TEXT * 20, LOG_TEXT, PROSE * 4, MARKDOWN, DIFF, "def f():\n    return 1\n", ""],
    ids=["json", "log", "prose", "markdown", "diff", "too-short", "empty"],
)
def test_detect_rejects_other_text(text: str) -> None:
    assert CodeCompressor().detect(text) is False


def test_detect_accepts_numbered_listing() -> None:
    listing = "\n".join(f"{i:6d}\t{line}" for i, line in enumerate(PY.split("\n"), 1))
    assert CodeCompressor().detect(listing) is True


# ---------------------------------------------------------------------------- python


def test_python_keeps_outline_verbatim_and_elides_bodies() -> None:
    result = _compress(PY)
    out = result.text
    _assert_kept_in_order(PY, out)
    for kept in (
        '"""Module docstring: a tiny HTTP helper."""',
        "from __future__ import annotations",
        "import json",
        "TIMEOUT = 30",
        "def parse_headers(raw: str) -> dict[str, str]:",
        '    """Split raw header text into a dict."""',
        "class Client:",
        "    retries = 3",
        "    @property",
        "    async def fetch(\n        self,\n        path: str,\n        *,\n"
        '        timeout: int = TIMEOUT,\n    ) -> bytes:\n        """Fetch ``path``."""',
        "    def close(self) -> None:",
    ):
        assert kept in out
    assert "        self.base = base\n" in out  # small bodies are kept
    assert '        return self.base + "/"\n' in out
    for elided in ("for line in raw.splitlines():", "# build the request", "self.closed = True"):
        assert elided not in out
    assert result.lossy and result.dropped == 7 + 8 + 6
    ast.parse(out)  # still Python


def test_python_markers_name_line_ranges_and_the_stored_original() -> None:
    store = MemoryOriginalStore()
    result = CodeCompressor().compress(PY, _ctx(store=store))
    assert result is not None
    (ref,) = result.refs
    assert _markers(result.text) == [
        f"    ...  # [headroom: body elided, 7 lines (L13-L19); ref={ref}]",
        f"        ...  # [headroom: body elided, 8 lines (L41-L48); ref={ref}]",
        f"        ...  # [headroom: body elided, 6 lines (L52-L57); ref={ref}]",
    ]
    lines = PY.split("\n")
    assert lines[12] == "    out = {}" and lines[18] == "    return out"
    assert lines[40] == "        # build the request"  # the comment opening a body goes with it
    stored = store.get(ref)
    assert stored is not None and stored.text == PY
    assert stored.kind == "code" and stored.tool == "read_file"
    assert len(store) == 1


def test_query_naming_a_function_keeps_its_body() -> None:
    out = _compress(PY, query="what does parse_headers return for an empty line?").text
    assert "    for line in raw.splitlines():" in out
    assert "self.closed = True" not in out  # other bodies still elided


def test_query_naming_class_dot_method_keeps_only_that_method() -> None:
    out = _compress(PY, query="Client.close hangs").text
    assert "        self.closed = True" in out
    assert "for line in raw.splitlines():" not in out
    assert "# build the request" not in out


def test_query_naming_a_symbol_used_in_a_body_keeps_that_body() -> None:
    out = _compress(PY, query="where is _drain called?").text
    assert '            self._drain(attempt, reason="closing the client now")' in out
    assert "for line in raw.splitlines():" not in out


def test_query_naming_every_elided_symbol_turns_compression_off() -> None:
    query = "parse_headers fetch close"
    assert CodeCompressor().compress(PY, _ctx(query)) is None


def test_query_identifiers_are_case_sensitive_and_skip_prose() -> None:
    query = parse_query("Why does Client.fetch time out when parse_headers gets None?")
    assert query.dotted == {"Client.fetch"}
    assert query.plain == {"parse_headers"}  # prose words, None and `gets` are not names
    out = _compress(PY, query="PARSE_HEADERS").text
    assert "for line in raw.splitlines():" not in out


def test_long_module_constant_values_are_elided_between_brackets() -> None:
    items = "".join(f'    "header-{i}": "value number {i} of the table",\n' for i in range(20))
    text = PY + f"\nHEADERS = {{\n{items}}}\n"
    out = _compress(text).text
    assert "HEADERS = {\n    ...  # [headroom: value elided, 20 lines (L60-L79); ref=" in out
    assert "\n}\n" in out
    ast.parse(out)
    named = CodeCompressor().compress(text, _ctx("HEADERS"))  # None: too little left to cut
    assert '"header-3"' in (text if named is None else named.text)


def test_syntax_error_falls_back_to_indentation() -> None:
    truncated = PY[: PY.index('        self.base = ""')]  # cut inside close()
    with pytest.raises(SyntaxError):
        ast.parse(truncated + "\n)")
    result = _compress(truncated)
    assert "def parse_headers(raw: str) -> dict[str, str]:" in result.text
    assert "for line in raw.splitlines():" not in result.text
    assert "    ...  # [headroom: body elided, 7 lines (L13-L19); ref=" in result.text
    _assert_kept_in_order(truncated, result.text)


@pytest.mark.parametrize(
    "text",
    [
        "def broken(:\n" + "    x = (\n" * 40,
        "class A:\n" + "\tdef f(self):\n  \t  return [\n" * 30,
        "\x00def f():\n" + "    pass\n" * 50,
        "def f():\n" + '    """never closed\n' + "    text\n" * 60,
    ],
    ids=["unbalanced", "mixed-tabs", "nul", "open-docstring"],
)
def test_malformed_python_is_left_alone(text: str) -> None:
    assert CodeCompressor().compress(text, _ctx()) is None


# ---------------------------------------------------------------------------- brace languages


def test_javascript_literals_and_comments_do_not_confuse_braces(parser: str) -> None:
    result = _compress(JS)
    out = result.text
    _assert_kept_in_order(JS, out)
    (ref,) = result.refs
    assert (
        "function buildRoute(name, opts) {\n"
        f"  // ... [headroom: body elided, 8 lines (L9-L16); ref={ref}]\n"
        "}\n"
    ) in out
    assert "module.exports = function createApp(options) {\n" in out
    assert "  function onerror(err) {\n" in out  # nested named function: signature kept
    assert "routes.forEach(function (route) {" not in out  # an anonymous callback is body
    assert out.endswith("};\n")


def test_go_signatures_kept_including_struct_results(parser: str) -> None:
    out = _compress(GO).text
    _assert_kept_in_order(GO, out)
    assert "func Parse(s string) (*Config, error) {\n\t// ... [headroom: body elided, 9" in out
    assert "func (c *Config) Done() <-chan struct{} {\n\t// ... [headroom: body elided" in out
    assert "func (c *Config) String() string { return c.Name }" in out
    assert "type Config struct {\n\tName string\n\tTags []string\n}" in out


def test_go_query_by_receiver_method(parser: str) -> None:
    out = _compress(GO, query="Config.Done leaks").text
    assert "\t\tclose(ch)" in out
    assert "c.Tags = append" not in out


@pytest.mark.parametrize("text", [TS, JAVA, RUST], ids=["typescript", "java", "rust"])
def test_other_brace_languages_elide_bodies(text: str, parser: str) -> None:
    result = CodeCompressor().compress(text, _ctx())
    assert result is not None
    _assert_kept_in_order(text, result.text)
    assert len(_markers(result.text)) >= 1
    assert count_tokens_text(result.text) < 0.9 * count_tokens_text(text)


def test_jsx_component_keeps_nested_handlers_and_elides_markup(parser: str) -> None:
    result = _compress(JSX)
    out = result.text
    _assert_kept_in_order(JSX, out)
    (ref,) = result.refs
    assert out == (
        "import React, { useState, useEffect } from 'react';\n\n"
        "export default function TrajectoryView({ items, onSelect }) {\n"
        "  const [open, setOpen] = useState(false);\n"
        "  const [filter, setFilter] = useState('');\n\n"
        "  const handleClick = (item) => {\n"
        f"    // ... [headroom: body elided, 4 lines (L8-L11); ref={ref}]\n"
        "  };\n"
        f"  // ... [headroom: body elided, 17 lines (L13-L29); ref={ref}]\n"
        "}\n"
    )


def test_c_braces_on_their_own_line(parser: str) -> None:
    out = _compress(C_ALLMAN).text
    _assert_kept_in_order(C_ALLMAN, out)
    assert "static int count_cases(const char* text, int limit)\n{\n  // ... [headroom: body" in out
    assert "int main(int argc, char** argv)\n{\n  // ... [headroom: body elided, 7 lines" in out
    assert "fprintf" not in out


def test_a_view_of_one_function_keeps_its_body() -> None:
    body = "".join(
        f'  step_{i}(ctx, {i}, "a step of the one function viewed");\n' for i in range(40)
    )
    view = "static int run(context_t* ctx)\n{\n" + body + "  return 0;\n}\n"
    assert CodeCompressor().detect(view) is True
    assert CodeCompressor().compress(view, _ctx()) is None
    helpers = "".join(f"int helper_{i}(void) {{ return {i}; }}\n" for i in range(10))
    whole = "#include <stdio.h>\n#include <stdlib.h>\n\n" + helpers + view
    assert CodeCompressor().compress(whole, _ctx()) is not None  # a file, not a view


def test_mask_blanks_literals_and_keeps_code_braces() -> None:
    source = "a = '{'; b = `x ${c + '}'} {`; d = /[{]/g; /* { */ // {\nf() { g(\"}\") }"
    masked = mask(source, "js")
    assert len(masked.text) == len(source)
    assert [source[offset] for offset, _ in masked.braces] == ["{", "}"]
    assert masked.text.endswith('f() { g(" ") }')
    assert "{" not in masked.text[: masked.text.index("f()")]


def test_rust_lifetimes_are_not_strings() -> None:
    masked = mask("fn f<'a>(x: &'a str) -> char { let c = '}'; x }", "rust")
    assert [char for _, char in masked.braces] == ["{", "}"]


# ---------------------------------------------------------------------------- invariants


@pytest.mark.parametrize("text", [PY, JS, GO], ids=["python", "javascript", "go"])
def test_idempotent_and_deterministic(text: str) -> None:
    first = _compress(text)
    again = CodeCompressor().compress(text, _ctx())
    assert again is not None and again.text == first.text
    second = CodeCompressor().compress(first.text, _ctx())
    assert second is None or second.text == first.text


def test_below_min_tokens_returns_none_and_stores_nothing() -> None:
    store = MemoryOriginalStore()
    assert CodeCompressor().compress(PY, _ctx(store=store, min_tokens=10_000)) is None
    assert len(store) == 0


def test_no_worthwhile_saving_returns_none_and_stores_nothing() -> None:
    small = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(30))
    store = MemoryOriginalStore()
    assert CodeCompressor().compress(small, _ctx(store=store)) is None
    assert len(store) == 0


def test_numbered_listing_keeps_prefixes_and_uses_listing_numbers() -> None:
    listing = "\n".join(f"{i:6d}\t{line}" for i, line in enumerate(PY.split("\n"), 101))
    result = _compress(listing)
    _assert_kept_in_order(listing, result.text)
    assert "   111\tdef parse_headers(raw: str) -> dict[str, str]:" in result.text
    assert "      \t    ...  # [headroom: body elided, 7 lines (L113-L119); ref=" in result.text
    assert CodeCompressor().compress(result.text, _ctx()) is None


def test_arrow_listing_from_read_tools() -> None:
    listing = "\n".join(f"{i:>6}→{line}" for i, line in enumerate(GO.split("\n"), 1))
    out = _compress(listing).text
    assert "    15→func Parse(s string) (*Config, error) {" in out
    assert "      →\t// ... [headroom: body elided, 9 lines (L16-L24); ref=" in out


def test_tool_listing_with_header_line_is_a_listing() -> None:
    body = "\n".join(f"{i:6d}\t{line}" for i, line in enumerate(GO.split("\n"), 1))
    text = "Here's the result of running `cat -n` on /work/demo/config.go:\n" + body
    out = _compress(text).text
    assert out.startswith("Here's the result of running `cat -n` on /work/demo/config.go:\n")
    assert "    15\tfunc Parse(s string) (*Config, error) {\n      \t\t// ... [headroom" in out
    _assert_kept_in_order(text, out)


def test_swe_agent_window_with_colon_numbers() -> None:
    window = "\n".join(f"{i}:{line}" for i, line in enumerate(PY.split("\n")[10:], 11))
    text = f"[File: /repo/client.py (90 lines total)]\n(10 more lines above)\n{window}\n(3 more lines below)"
    out = _compress(text).text
    assert out.startswith("[File: /repo/client.py (90 lines total)]\n(10 more lines above)\n")
    assert out.endswith("\n(3 more lines below)")
    assert "11:def parse_headers(raw: str) -> dict[str, str]:" in out
    assert "  :    ...  # [headroom: body elided, 7 lines (L13-L19); ref=" in out
    _assert_kept_in_order(text, out)


def test_grep_output_is_not_code() -> None:
    hits = "".join(
        f"src/app/module_{i}.py:{i * 7}:    def handler_{i}(self, request):\n" for i in range(20)
    )
    numbered_hits = "".join(f"{i * 13}:srcDir := $(shell dirname {i})\n" for i in range(20))
    assert CodeCompressor().detect(hits) is False
    assert CodeCompressor().detect(numbered_hits) is False


def test_crlf_line_endings_are_kept() -> None:
    crlf = PY.replace("\n", "\r\n")
    out = _compress(crlf).text
    assert out.count("\n") == out.count("\r\n") > 20
    assert len(_markers(out)) == 3
    _assert_kept_in_order(crlf, out)


_SOURCES = [PY, JS, GO, TS, JAVA, RUST, JSX, C_ALLMAN]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from(_SOURCES),
    cut=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    query=st.sampled_from([None, "", "parse_headers", "Client.fetch", "routes", "x.y.z ("]),
    noise=st.text(max_size=20),
)
def test_any_slice_of_source_is_safe(
    source: str, cut: tuple[float, float], query: str | None, noise: str
) -> None:
    """A file cut anywhere (read limits, views), with junk appended: never raises, never
    grows, keeps lines verbatim and in order, and is idempotent."""
    a, b = sorted(int(x * len(source)) for x in cut)
    text = source[a:b] + noise
    compressor = CodeCompressor()
    compressor.detect(text)
    result = compressor.compress(text, _ctx(query))
    if result is None:
        return
    assert count_tokens_text(result.text) <= 0.9 * count_tokens_text(text)
    _assert_kept_in_order(text, result.text)
    again = compressor.compress(result.text, _ctx(query))
    assert again is None or again.text == result.text


# ---------------------------------------------------------------------------- real files

_SIGNATURE_RES = {
    ".py": re.compile(r"^\s*(?:async\s+def|def|class)\s+\w+"),
    ".go": re.compile(r"^func\s"),
    ".js": re.compile(
        r"^\s*(?:(?:export\s+)?(?:async\s+)?function\s+[\w$]+|[\w$.]+\s*=\s*function\b)"
    ),
}


def _code_files(root: Path) -> list[Path]:
    files = sorted((root / "code_files").glob("*/*.txt"))
    if not files:
        pytest.skip(f"no code files under {root / 'code_files'}")
    return files


def _signature_lines(path: Path, text: str) -> list[str]:
    suffix = Path(path.stem).suffix
    if suffix == ".py":
        tree = ast.parse(text)
        lines = text.split("\n")
        kinds = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
        return [lines[n.lineno - 1] for n in ast.walk(tree) if isinstance(n, kinds)]
    pattern = _SIGNATURE_RES.get(suffix, _SIGNATURE_RES[".js"])  # .ts, .tsx, .jsx
    return [line for line in text.split("\n") if pattern.match(line)]


def test_real_files_keep_every_signature_and_save_tokens(shared_data: Path) -> None:
    """Run with -s to see the saving per file."""
    files = _code_files(shared_data)
    compressor = CodeCompressor()
    total_before = total_after = 0
    print()
    for path in files:
        text = path.read_text("utf-8")
        assert compressor.detect(text), path.name
        result = compressor.compress(text, _ctx(min_tokens=200))
        assert result is not None, path.name
        signatures = _signature_lines(path, text)
        assert len(signatures) >= 10, path.name
        out_lines = set(result.text.split("\n"))
        missing = [line for line in signatures if line not in out_lines]
        assert not missing, f"{path.name}: signatures lost: {missing[:3]}"
        _assert_kept_in_order(text, result.text)
        again = compressor.compress(result.text, _ctx())
        assert again is None or again.text == result.text, f"{path.name}: not idempotent"
        before, after = count_tokens_text(text), count_tokens_text(result.text)
        total_before, total_after = total_before + before, total_after + after
        print(
            f"{path.parent.name}/{path.name}: {before} -> {after} tokens ({1 - after / before:.1%})"
        )
        assert after < 0.85 * before, path.name
    print(
        f"all {len(files)} files: {total_before} -> {total_after} ({1 - total_after / total_before:.1%})"
    )
    assert total_after < 0.65 * total_before


def test_real_files_compress_within_100_ms(shared_data: Path) -> None:
    compressor = CodeCompressor()
    compressor.compress("def warm_up():\n    return 1\n" * 10, _ctx())
    for path in _code_files(shared_data):
        text = path.read_text("utf-8")
        best = float("inf")
        for _ in range(3):  # best of three: the machine may be busy
            started = time.perf_counter()
            compressor.compress(text, _ctx(min_tokens=200))
            best = min(best, time.perf_counter() - started)
        assert best < 0.1, f"{path.name}: {best * 1000:.0f} ms"


def test_tree_sitter_and_braces_agree_on_real_files(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not _code_treesitter.is_available():
        pytest.skip("tree-sitter grammars not installed (extra `code`)")
    files = [p for p in _code_files(shared_data) if Path(p.stem).suffix != ".py"]
    texts = [p.read_text("utf-8") for p in files]
    with_parser = [CodeCompressor().compress(t, _ctx()) for t in texts]
    monkeypatch.setattr(_code_treesitter, "is_available", lambda language=None: False)
    with_braces = [CodeCompressor().compress(t, _ctx()) for t in texts]
    for path, a, b in zip(files, with_parser, with_braces, strict=True):
        assert a is not None and b is not None
        assert _markers(a.text) == _markers(b.text), path.name
