"""ModelCache: one load per package digest, least recently used dropped first."""

from __future__ import annotations

import shutil

import pytest

from batch.models import ModelCache, configure_process_cache, open_package, process_cache


def test_model_loads_once_across_many_gets(logistic_package):
    cache = ModelCache(maxsize=2)
    package = logistic_package.package
    scorers = [cache.get(open_package(package.path)) for _ in range(25)]
    assert all(s is scorers[0] for s in scorers)
    assert cache.loads == {package.digest: 1}
    assert package.digest in cache and len(cache) == 1


def test_same_content_elsewhere_shares_the_entry(tmp_path, hgb_package):
    copy = tmp_path / "copy"
    shutil.copytree(hgb_package.path, copy)
    cache = ModelCache()
    assert cache.get(hgb_package.package) is cache.get(open_package(copy))
    assert sum(cache.loads.values()) == 1


def test_least_recently_used_is_evicted(logistic_package, hgb_package, regressor_package):
    a, b, c = (t.package for t in (logistic_package, hgb_package, regressor_package))
    cache = ModelCache(maxsize=2)
    first_a = cache.get(a)
    cache.get(b)
    assert cache.get(a) is first_a  # a is now the most recently used
    cache.get(c)  # evicts b
    assert a.digest in cache and c.digest in cache and b.digest not in cache
    assert len(cache) == 2
    cache.get(b)  # evicts a, loads b again
    assert a.digest not in cache
    assert cache.loads == {a.digest: 1, b.digest: 2, c.digest: 1}
    assert cache.get(a) is not first_a
    assert cache.loads[a.digest] == 2


def test_clear_forces_a_reload(hgb_package):
    cache = ModelCache(maxsize=1)
    cache.get(hgb_package.package)
    cache.clear()
    assert len(cache) == 0
    cache.get(hgb_package.package)
    assert cache.loads[hgb_package.package.digest] == 2


def test_maxsize_must_be_positive():
    with pytest.raises(ValueError, match="maxsize must be >= 1, got 0"):
        ModelCache(maxsize=0)


def test_configure_process_cache_replaces_it(monkeypatch):
    monkeypatch.setattr("batch.models.cache._process_cache", None)  # restored afterwards
    old = process_cache()
    assert process_cache() is old
    new = configure_process_cache(maxsize=3, threads=2)
    assert process_cache() is new is not old
    assert (new.maxsize, new.threads) == (3, 2)
    assert len(new) == 0 and not new.loads
