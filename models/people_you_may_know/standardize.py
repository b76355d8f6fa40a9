"""Attribute standardization: the spellings of one school, company or city as one canonical value.

"University of Northfield", "Northfield University", "Univ. of Northfield", "northfield university" and "UNF" are one
school; "Arbor Logistics", "ARBOR LOGISTICS" and "Arbor Logistics, LLC" one company; "St. Albans, NR" and "Saint
Albans" one city. Shared-school and shared-company features are only as good as this.

A spelling is normalized (accents, case, punctuation, abbreviations written out, legal suffixes and a trailing region
code dropped) to its words; spellings with the same set of words (stop words aside) are one value, whatever the
order. A spelling of one word of 3 to 6 capitals (an acronym) joins the value whose initials it is, when exactly one
value has them; otherwise it stays a value of its own (a wrong merge is worse than a missed one). Each value is named
by its most frequent spelling.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

import polars as pl

ATTRIBUTES = ("school", "company", "city", "industry")
STOP_WORDS = frozenset({"of", "the", "at", "and", "in", "for", "de"})
ABBREVIATIONS = {"univ": "university", "u": "university", "uni": "university", "st": "saint", "ft": "fort",
                 "mt": "mount", "inst": "institute", "tech": "technology", "coll": "college", "&": "and",
                 "intl": "international", "dept": "department"}
LEGAL_SUFFIXES = frozenset({"inc", "llc", "ltd", "corp", "co", "corporation", "incorporated", "gmbh", "plc", "limited"})
_ACRONYM = re.compile(r"^[A-Z]{3,6}$")


def words(spelling: str) -> list[str]:
    """The spelling's words in order, normalized."""
    text = unicodedata.normalize("NFKD", spelling).encode("ascii", "ignore").decode()
    region = re.search(r",\s*([A-Za-z]{2})\s*$", text)
    if region:  # "Name, RC": a region code after a comma is not part of the name
        text = text[: region.start()]
    text = text.lower().replace("&", " and ")
    tokens = [ABBREVIATIONS.get(t, t) for t in re.split(r"[^a-z0-9]+", text) if t]
    while tokens and tokens[-1] in LEGAL_SUFFIXES:
        tokens.pop()
    return tokens


def key(spelling: str) -> str:
    return " ".join(sorted(set(words(spelling)) - STOP_WORDS))


def initials(spelling: str) -> str:
    return "".join(w[0] for w in words(spelling) if w not in STOP_WORDS).upper()


def slug(name: str) -> str:
    return "-".join(words(name)) or "unknown"


@dataclass
class Standardizer:
    """Spelling to canonical id, per attribute, learned from the spellings profiles use."""

    canonical: dict[str, dict[str, str]] = field(default_factory=dict)  # attribute -> key -> canonical id
    names: dict[str, dict[str, str]] = field(default_factory=dict)  # attribute -> canonical id -> display name

    @classmethod
    def fit(cls, users: pl.DataFrame) -> Standardizer:
        fitted = cls()
        for attribute in ATTRIBUTES:
            if attribute not in users.columns:
                continue
            counts = Counter(s.strip() for s in users[attribute].drop_nulls().to_list() if s and s.strip())
            by_key: dict[str, Counter] = {}
            acronyms: Counter = Counter()
            for spelling, n in counts.items():
                k = key(spelling)
                if not k:
                    continue
                if _ACRONYM.match(spelling) and " " not in k:
                    acronyms[spelling] += n
                    continue
                by_key.setdefault(k, Counter())[spelling] += n
            owners: dict[str, list[str]] = {}
            for k, spellings in by_key.items():
                shown = spellings.most_common(1)[0][0]
                for candidate in {initials(shown), *(initials(s) for s in spellings)}:
                    owners.setdefault(candidate, [])
                    if k not in owners[candidate]:
                        owners[candidate].append(k)
            for spelling, n in acronyms.items():
                matches = owners.get(spelling.upper(), [])
                target = matches[0] if len(matches) == 1 else key(spelling)
                by_key.setdefault(target, Counter())[spelling] += n
            ids, names = {}, {}
            for k, spellings in by_key.items():
                shown = max(spellings.items(), key=lambda item: (item[1], item[0]))[0]
                canonical_id = slug(shown) if not _ACRONYM.match(shown) else shown.lower()
                while canonical_id in names and names[canonical_id] != shown:
                    canonical_id += "-2"
                names[canonical_id] = shown
                ids[k] = canonical_id
                for spelling in spellings:
                    ids[f"={spelling}"] = canonical_id  # exact spellings seen (acronyms resolve through these)
            fitted.canonical[attribute], fitted.names[attribute] = ids, names
        return fitted

    def lookup(self, attribute: str, spelling: str | None) -> str | None:
        """The canonical id of a spelling (seen or not: an unseen one is matched by its words), None when empty or
        unknown."""
        if spelling is None or not spelling.strip():
            return None
        table = self.canonical.get(attribute, {})
        found = table.get(f"={spelling.strip()}")
        if found is None:
            found = table.get(key(spelling))
        if found is None and _ACRONYM.match(spelling.strip()):
            matches = {v for k, v in table.items() if not k.startswith("=") and initials(self.names[attribute][v]) == spelling.strip()}
            found = matches.pop() if len(matches) == 1 else None
        return found

    def apply(self, users: pl.DataFrame) -> pl.DataFrame:
        """Users with each attribute replaced by its canonical id (null when missing or unknown)."""
        return users.with_columns(*[
            pl.Series(a, [self.lookup(a, s) for s in users[a].to_list()], dtype=pl.String)
            for a in ATTRIBUTES if a in users.columns
        ])

    def table(self, users: pl.DataFrame) -> pl.DataFrame:
        """One row per (attribute, spelling): its canonical id and name and how many profiles wrote it."""
        rows = []
        for attribute in ATTRIBUTES:
            if attribute not in users.columns:
                continue
            for spelling, n in Counter(s for s in users[attribute].drop_nulls().to_list()).items():
                canonical_id = self.lookup(attribute, spelling)
                rows.append({"attribute": attribute, "spelling": spelling, "canonical_id": canonical_id,
                             "canonical_name": self.names[attribute].get(canonical_id) if canonical_id else None,
                             "profiles": n})
        return pl.DataFrame(rows, schema={"attribute": pl.String, "spelling": pl.String, "canonical_id": pl.String,
                                          "canonical_name": pl.String, "profiles": pl.Int64})

    def to_json(self) -> str:
        return json.dumps({"canonical": self.canonical, "names": self.names})

    @classmethod
    def from_json(cls, text: str) -> Standardizer:
        return cls(**json.loads(text))


def agreement(standardized: pl.DataFrame, truth: pl.DataFrame, attribute: str, sample: int = 200_000,
              seed: int = 0) -> dict[str, float]:
    """How the standardized attribute agrees with the true one on random pairs of profiles that both have it:
    precision (pairs called the same that are) and recall (pairs that are the same called so)."""
    import numpy as np

    joined = standardized.select("user_id", attribute).join(
        truth.select("user_id", true=pl.col(attribute)), on="user_id").filter(pl.col("true") >= 0)
    found = joined[attribute].to_numpy()
    true = joined["true"].to_numpy()
    rng = np.random.default_rng(seed)
    a, b = rng.integers(len(joined), size=sample), rng.integers(len(joined), size=sample)
    keep = a != b
    a, b = a[keep], b[keep]
    same_true = true[a] == true[b]
    same_found = (found[a] == found[b]) & (found[a] != None)  # noqa: E711 - object arrays
    return {"precision": float((same_found & same_true).sum() / max(1, same_found.sum())),
            "recall": float((same_found & same_true).sum() / max(1, same_true.sum()))}
