"""Text preprocessing shared by the index and the query path, so both see the same tokens: Unicode normalization
(NFKC, then accents stripped: "Crème Brûlée" and "creme brulee" are one query), lower case, word tokens of letters and
digits of any script ("паста" is a word), English stopwords removed, Snowball stems ("noodles" finds "noodle")."""

from __future__ import annotations

import functools
import re
import unicodedata

TOKEN = re.compile(r"[^\W_]+")  # letters and digits of any script


@functools.lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@functools.lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def normalize(text: str | None) -> str:
    """Lower case, accents stripped, every run of anything but letters and digits (of any script) one space."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return " ".join(TOKEN.findall(plain))


def tokens(text: str | None) -> list[str]:
    """The stems the index holds for `text`, in order."""
    words = [w for w in normalize(text).split() if w not in _stopwords()]
    return _stemmer().stemWords(words) if words else []


def document(title: str | None, description: str | None, tags: str | None, auto_tags: str | None = None) -> str:
    """What the text index reads of a video: title, description, its tags and the auto-tagger's (comma-separated)."""
    parts = [title, description, (tags or "").replace(",", " "), (auto_tags or "").replace(",", " ")]
    return " ".join(p for p in parts if p)
