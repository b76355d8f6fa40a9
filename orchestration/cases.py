"""The case-study registry: the one place in orchestration/ that names case studies.

The root Definitions, the main command, packaging, `./dev.sh cases` and the shared tests iterate over it; a new
case study is its folders (assets/, models/, bentos/, expectations/, tests/) and one line here.
"""

from __future__ import annotations

from assets.case import CaseStudy


def registered() -> tuple[CaseStudy, ...]:
    from assets.ad_click import CASE as ad_click
    from assets.event_recommendation import CASE as event_recommendation
    from assets.news_feed import CASE as news_feed
    from assets.people_you_may_know import CASE as people_you_may_know
    from assets.similar_listings import CASE as similar_listings
    from assets.video_rec import CASE as video_rec
    from assets.video_search import CASE as video_search

    return (ad_click, video_rec, similar_listings, event_recommendation, news_feed, video_search, people_you_may_know)


def find(name: str, cases: tuple[CaseStudy, ...] | None = None) -> CaseStudy:
    cases = registered() if cases is None else cases
    for case in cases:
        if case.name == name:
            return case
    raise ValueError(f"unknown case study {name!r}; the case studies are: {', '.join(c.name for c in cases)}")
