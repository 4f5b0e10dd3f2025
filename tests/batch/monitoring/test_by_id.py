"""Tables split by a hash of the association id: every id's rows, of every side, in one
share; every row once; in memory when small, spilled to disk (and removed) when not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from batch.monitoring.by_id import BUCKETS, IdBuckets, bucket_of


def _table(ids: list[str], tag: str) -> pa.Table:
    return pa.table({"association_id": ids, "tag": [tag] * len(ids),
                     "n": np.arange(len(ids))})


def test_every_id_lands_in_one_share_with_all_its_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    ids = [f"loan-{i}" for i in rng.integers(0, 4_000, 20_000)]
    with IdBuckets(("left", "right"), folder=tmp_path, rows_per_share=3_000) as shares:
        for k in range(0, 20_000, 2_500):
            shares.add("left", _table(ids[k:k + 2_500], "l"))
        shares.add("right", _table(ids[::3], "r"))
        spilled = list(tmp_path.iterdir())
        assert len(spilled) == 1  # one temporary folder of bucket files
        seen: dict[str, int] = {}
        rows = {"left": 0, "right": 0}
        count = 0
        for share in shares:
            count += 1
            for side in ("left", "right"):
                table = share[side]
                assert table is not None
                rows[side] += table.num_rows
            mine = set(share["left"].column("association_id").to_pylist()) | set(
                share["right"].column("association_id").to_pylist())
            for i in mine:
                assert i not in seen, f"{i} in two shares"
                seen[i] = count
        assert rows == {"left": 20_000, "right": len(ids[::3])}
        assert count > 3  # about 3,000 rows a share
    assert list(tmp_path.iterdir()) == []  # the spilled files are removed


def test_a_small_input_stays_in_memory_as_one_share(tmp_path: Path) -> None:
    with IdBuckets(("left", "right"), folder=tmp_path) as shares:
        shares.add("left", _table(["a", "b"], "l"))
        (share,) = list(shares)
        assert share["left"].num_rows == 2 and share["right"] is None
        assert list(tmp_path.iterdir()) == []


def test_the_bucket_of_an_id_is_its_text_s_whatever_the_array() -> None:
    ids = pa.array(["x", "y", "00007", "7", ""] * 3)
    keys = bucket_of(ids, BUCKETS)
    assert keys.min() >= 0 and keys.max() < BUCKETS
    assert (bucket_of(pa.chunked_array([ids.slice(0, 4), ids.slice(4)]), BUCKETS)
            == keys).all()
    assert (bucket_of(ids.cast(pa.large_string()), BUCKETS) == keys).all()
    assert keys[2] == keys[7] and len(set(bucket_of(
        pa.array([str(i) for i in range(1000)]), BUCKETS).tolist())) == BUCKETS


def test_buckets_hashed_beforehand_give_the_same_shares(tmp_path: Path) -> None:
    ids = [f"loan-{i % 900}" for i in range(5_000)]
    shares = {}
    for given in (False, True):
        with IdBuckets(("left",), folder=tmp_path, rows_per_share=1_000) as split:
            for k in range(0, 5_000, 1_000):
                part = _table(ids[k:k + 1_000], "l")
                keys = pa.array(bucket_of(part.column("association_id"), BUCKETS)) \
                    if given else None
                split.add("left", part, keys)
            shares[given] = [sorted(s["left"].column("association_id").to_pylist())
                             for s in split]
            assert all(s for s in shares[given])
    assert shares[True] == shares[False] and len(shares[True]) > 1
