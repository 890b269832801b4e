"""Which tool outputs a later call makes stale (headroom_core.transforms._supersede)."""

from __future__ import annotations

import json
from typing import Any

from headroom_core.transforms._supersede import find_stale


class Session:
    """Builds a history one tool call at a time."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = [{"role": "user", "content": "Fix the bug."}]

    def call(self, name: str, output: str, **args: Any) -> int:
        cid = f"c{len(self.messages)}"
        self.messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": cid,
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)},
                    }
                ],
            }
        )
        self.messages.append({"role": "tool", "tool_call_id": cid, "content": output})
        return len(self.messages) - 1


def stale_map(s: Session) -> dict[int, tuple[int, str]]:
    return {x.index: (x.at, x.reason) for x in find_stale(s.messages)}


def test_a_read_goes_stale_when_the_file_is_edited_written_or_read_again() -> None:
    s = Session()
    r1 = s.call("Read", "     1→a\n     2→b\n     3→c", file_path="/x.py")
    r2 = s.call("Read", "     1→z\n     2→z\n     3→z", file_path="/y.py")
    e = s.call("Edit", "The file /x.py has been updated.", file_path="/x.py", old_string="a")
    r3 = s.call("Read", "     1→a\n     2→b\n     3→c", file_path="/y.py", offset=1, limit=2)
    r4 = s.call("Read", "     1→z\n     2→z\n     3→z", file_path="/y.py")
    found = stale_map(s)
    assert found[r1] == (e, "the file was changed later")
    assert found[r2] == (r4, "the file was read again later")  # r3 covers lines 1-2 only
    assert found[r3] == (r4, "the file was read again later")
    assert r4 not in found  # current: the agent edits against it


def test_a_failed_edit_changes_nothing() -> None:
    s = Session()
    r1 = s.call("Read", "     1→a\n     2→b\n     3→c", file_path="/x.py")
    s.call("Edit", "String to replace not found in file.", file_path="/x.py", old_string="q")
    assert r1 not in stale_map(s)


def test_commands_run_again_todo_lists_and_other_tools() -> None:
    s = Session()
    t1 = s.call("Bash", "3 tests, 1 failure", command="mix test", description="run tests")
    s.call("Bash", "ok", command="git status")
    t2 = s.call("Bash", "3 tests, 0 failures", command="mix test", description="again")
    todo1 = s.call("TodoWrite", "Todos have been modified", todos=[{"content": "a"}])
    todo2 = s.call("TodoWrite", "Todos have been modified", todos=[{"content": "b"}])
    q1 = s.call("search", '{"hits": 3}', q="rust")
    s.call("search", '{"hits": 4}', q="go")
    q3 = s.call("search", '{"hits": 3}', q="rust")
    page1 = s.call("next_page", '[{"id": 1}]')  # no arguments, new data each time:
    s.call("next_page", '[{"id": 2}]')  # not stale, its tool is not idempotent
    found = stale_map(s)
    assert found[t1] == (t2, "the same command ran again later")
    assert found[todo1] == (todo2, "a later call replaced this state")
    assert found[q1] == (q3, "the same call returned the same output later")
    assert page1 not in found
    assert set(found) == {t1, todo1, q1}


def test_openhands_editor_views() -> None:
    s = Session()
    v1 = s.call("str_replace_editor", "     1\ta", command="view", path="/a.c")
    v2 = s.call("str_replace_editor", "     5\tb", command="view", path="/a.c", view_range=[5, 9])
    ed = s.call(
        "str_replace_editor",
        "The file /a.c has been edited.",
        command="str_replace",
        path="/a.c",
    )
    found = stale_map(s)
    assert found[v1] == (ed, "the file was changed later")
    assert found[v2] == (ed, "the file was changed later")


def test_real_sessions_have_stale_reads(coding_sessions: list) -> None:
    for name, messages in coding_sessions:
        stale = find_stale(messages)
        assert stale, name
        for x in stale:
            assert messages[x.index]["role"] == "tool" and x.at > x.index, name
