"""The online store contract, run against the embedded SQLite backend and against a real Redis server."""

import pytest

from models.online_store import open_store


def test_empty_store_has_no_snapshot_and_returns_nothing(online_store):
    assert online_store.current() is None
    assert online_store.get("user", ["u1", None]) == [None, None]


def test_published_records_are_read_back_in_key_order(online_store):
    info = online_store.publish(
        [("user", "u1", {"age": 30, "x": 1.5}), ("user", "u2", {"age": 41}), ("ad", "a1", {"category": "books"})],
        feature_version="v1",
        as_of="2026-01-08T00:00:00+00:00",
    )
    assert info.records == 3
    assert online_store.current() == info
    assert online_store.get("user", ["u2", "missing", None, "u1"]) == [{"age": 41}, None, None, {"age": 30, "x": 1.5}]
    assert online_store.get("ad", ["a1"]) == [{"category": "books"}]


def test_a_new_snapshot_replaces_the_old_one_whole(online_store):
    old = online_store.publish([("user", "u1", {"n": 1}), ("user", "gone", {"n": 9})], "v1", "2026-01-07T00:00:00+00:00")
    new = online_store.publish([("user", "u1", {"n": 2})], "v1", "2026-01-08T00:00:00+00:00")
    assert online_store.current().snapshot_id == new.snapshot_id != old.snapshot_id
    assert online_store.get("user", ["u1", "gone"]) == [{"n": 2}, None]
    assert online_store.get_in(old.snapshot_id, "user", ["u1"]) == [None]  # the old snapshot is deleted


def test_namespaces_do_not_see_each_other(online_store, tmp_path, request):
    online_store.publish([("user", "u1", {"n": 1})], "v1", "t")
    other = open_store(
        f"sqlite:///{tmp_path / 'online.db'}" if "sqlite" in request.node.name else request.getfixturevalue("redis_url"),
        "another-namespace",
    )
    try:
        assert other.current() is None
    finally:
        other.close()


def test_unknown_url_scheme_is_a_clear_error():
    with pytest.raises(ValueError, match="use sqlite:///<file> or redis://"):
        open_store("postgres://x", "n")
