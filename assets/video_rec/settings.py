"""Video recommendation's settings: every field is settable as MLSD_VIDEO_REC_<FIELD> (`./dev.sh settings video_rec`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from assets.case import InvalidSetting


@dataclass(frozen=True)
class VideoRecSettings:
    raw_dir: str | None = None  # parquet files of your own; None runs the simulator
    start_date: date = date(2026, 1, 1)  # simulator only: your files' dates are used as they are
    days: int = 28  # simulator only
    seed: int = 11
    users: int = 3_000
    videos: int = 3_000
    new_videos_per_day: int = 60
    ranker_days: int = 4
    test_days: int = 4
    top_k: int = 20  # batch recommendations per user
    epochs: int = 20
    evaluation_users: int = 2_000  # test users sampled for the offline metrics

    def __post_init__(self):
        for name in ("days", "users", "videos", "ranker_days", "test_days", "top_k", "epochs", "evaluation_users"):
            if getattr(self, name) < 1:
                raise InvalidSetting(name, "must be at least 1")
        if self.new_videos_per_day < 0:
            raise InvalidSetting("new_videos_per_day", "must be 0 or more")
