"""The ledger: keys, buckets, reopening, and the bucket lock that keeps two senders from sending the same request."""

from __future__ import annotations

import threading
from pathlib import Path

from pairforge.generation.ledger import Ledger, LedgerRow, bucket_of, lock_buckets, request_key

SAMPLING = {"n": 1, "temperature": 0.7, "top_p": 0.9, "max_tokens": 64, "seed": 0}


def row(key: str, output: str = "{}") -> LedgerRow:
    return LedgerRow(key, "qp", "p1", "qp/v1.zh", "sha", "m", SAMPLING, [output], ["stop"], 10, 3, "run1")


def test_key_depends_on_every_input() -> None:
    base = request_key("sha", "model", SAMPLING, "段落")
    assert base == request_key("sha", "model", dict(reversed(SAMPLING.items())), "段落")
    variants = [
        request_key("sha2", "model", SAMPLING, "段落"),
        request_key("sha", "model2", SAMPLING, "段落"),
        request_key("sha", "model", {**SAMPLING, "temperature": 0.8}, "段落"),
        request_key("sha", "model", SAMPLING, "段落。"),
        request_key("sha", "model", SAMPLING, "段落", {"count": 4}),
    ]
    assert len({base, *variants}) == 6


def test_add_missing_get_and_reopen(tmp_path: Path) -> None:
    keys = [request_key("sha", "m", SAMPLING, f"段落{i}") for i in range(4)]
    ledger = Ledger(tmp_path / "ledger")
    ledger.add([row(keys[0], "first"), row(keys[1])])
    ledger.add([row(keys[0], "second")])  # a key is written once
    assert ledger.missing([keys[0], keys[2], keys[1], keys[3]]) == [keys[2], keys[3]]
    ledger.close()
    reopened = Ledger(tmp_path / "ledger")
    got = {r.key: r for r in reopened.get([keys[0], keys[1], keys[3]])}
    assert set(got) == {keys[0], keys[1]}
    assert got[keys[0]].outputs == ["first"] and got[keys[0]].sampling == SAMPLING
    assert reopened.count() == 2
    reopened.close()


def test_keys_spread_over_the_buckets(tmp_path: Path) -> None:
    keys = [request_key("sha", "m", SAMPLING, f"段落{i}") for i in range(1500)]
    ledger = Ledger(tmp_path / "ledger")
    ledger.add([row(k) for k in keys[:1200]])
    assert ledger.missing(keys) == keys[1200:]
    assert len(list(ledger.get(keys))) == 1200
    assert len(list((tmp_path / "ledger").glob("bucket-*.sqlite"))) == 16 == len({bucket_of(k) for k in keys})
    ledger.close()


def test_a_bucket_lock_makes_a_second_sender_wait(tmp_path: Path) -> None:
    """Events, not sleeps, order the two senders: ``a`` holds buckets 1 and 3 until told to let go, ``b`` asks for
    bucket 3 only once ``a`` holds it, and enters only after ``a`` is out."""
    order: list[str] = []
    held, release, entered = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with lock_buckets(tmp_path, [1, 3]):
            order.append("a in")
            held.set()
            assert release.wait(10)
            order.append("a out")

    def second() -> None:
        with lock_buckets(tmp_path, [3]):  # shares bucket 3: waits for a
            order.append("b in")
            entered.set()
        order.append("b out")

    a = threading.Thread(target=first)
    a.start()
    assert held.wait(10)
    b = threading.Thread(target=second)
    b.start()
    assert not entered.wait(0.2)  # a still holds bucket 3 (a broken lock lets b in at once)
    release.set()
    a.join(10)
    b.join(10)
    assert order == ["a in", "a out", "b in", "b out"]
