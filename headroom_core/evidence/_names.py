"""Names: what a passage is about, and whether a text names it.

A passage is about the entity its title names ("Waterford, New York", "Ulysses
(spacecraft)"). A text names that entity when it contains the title, or the title's head
(the title without a trailing parenthetical or ", qualifier": "Waterford", "Ulysses"), as a
case-sensitive phrase of whole words that is not the start of a longer capitalised name
("Audi" is not named by "Audi Quattro", "Concord" is by "Concord and Clayton").

A passage without a title is about the capitalised name its first sentence opens with
("Catawissa was a historic tugboat ..." is about "Catawissa"), when there is one.
"""

from __future__ import annotations

import html
import re

from ..relevance.bm25 import STOPWORDS

__all__ = ["names_of", "subject_of", "text_names"]

_QUALIFIED = re.compile(r"^(.*?\S)\s*(?:\([^()]*\)|,[^,]*)$")
_SUBJECT = re.compile(
    r"[\"'\u201c\u2018(]*([A-Z0-9][\w'\u2019&.-]*(?:[ \t]+(?:[A-Z0-9][\w'\u2019&.-]*|of|the|and|de|"
    r"for|in|on|la|le|von|van|da|du|del|der|y)){0,7})"
)
_MIN_NAME = 3  # a name of fewer characters names too much


def names_of(title: str) -> tuple[str, ...]:
    """The phrases that name the entity of ``title``: the title, then its head."""
    title = " ".join(html.unescape(title).split())
    out = [title]
    head = title
    while (m := _QUALIFIED.match(head)) is not None:  # "A (b), c" -> "A (b)" -> "A"
        head = m[1]
        out.append(head)
    return tuple(n for n in dict.fromkeys(out) if _usable(n))


def subject_of(sentence: str) -> str:
    """The capitalised name a sentence opens with, or "" (common words are no name)."""
    m = _SUBJECT.match(sentence.lstrip())
    if m is None:
        return ""
    words = m[1].rstrip(".").split()
    if len(words) > 1 and words[0] in _ARTICLES:  # "The Fratellis are ..." -> "Fratellis"
        words.pop(0)
    while words and words[-1].lower() in _JOINERS:
        words.pop()
    if not words or not words[0][0].isupper() or _common(words[0]):
        return ""  # "In 2007, ...", "However, ...", "It was ..."
    name = " ".join(words)
    return name if _usable(name) else ""


def text_names(text: str, name: str) -> bool:
    """True when ``text`` contains ``name`` as a whole, maximal capitalised phrase: not inside
    a word, not followed by more of a capitalised name ("Audi" in "Audi Quattro")."""
    # str.find and a look at each side: a compiled pattern per name costs more than the
    # search when names change with every query.
    start = text.find(name)
    while start != -1:
        end = start + len(name)
        if not (_word_char(text, start - 1) or _word_char(text, end) or _continues(text, end)):
            return True
        start = text.find(name, start + 1)
    return False


def _word_char(text: str, i: int) -> bool:
    return 0 <= i < len(text) and (text[i].isalnum() or text[i] == "_")


def _continues(text: str, end: int) -> bool:
    """Blanks then a capital letter follow ``end``."""
    i = end
    while i < len(text) and text[i] in " \t":
        i += 1
    return i > end and i < len(text) and text[i].isupper()


_JOINERS = frozenset({"of", "the", "and", "de", "for", "in", "on", "la", "le", "y"})
_ARTICLES = frozenset({"The", "A", "An"})


def _usable(name: str) -> bool:
    return len(name) >= _MIN_NAME and any(c.isalpha() for c in name)


def _common(word: str) -> bool:
    """A common word that opens sentences ("The", "In", "It", "However")."""
    return word.lower() in STOPWORDS or word.lower().rstrip(",") in _OPENERS


_OPENERS = frozenset(
    {"however", "although", "after", "before", "during", "since", "while", "when", "then",
     "here", "there", "this", "these", "those", "it", "he", "she", "they", "we", "his", "her",
     "born", "also", "other", "some", "many", "most", "one", "two", "three", "several"}
)  # fmt: skip
