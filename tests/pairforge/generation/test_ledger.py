from __future__ import annotations

from pathlib import Path

from pairforge.generation.ledger import Ledger, LedgerRow, request_key

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
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path)
    ledger.add([row("a", "first"), row("b")])
    ledger.add([row("a", "second")])  # a key is written once
    assert ledger.missing(["a", "c", "b", "d"]) == ["c", "d"]
    ledger.close()
    reopened = Ledger(path)
    got = {r.key: r for r in reopened.get(["a", "b", "zzz"])}
    assert set(got) == {"a", "b"}
    assert got["a"].outputs == ["first"] and got["a"].sampling == SAMPLING
    assert reopened.count() == 2
    reopened.close()


def test_many_keys(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.add([row(f"k{i}") for i in range(1200)])
    assert ledger.missing(f"k{i}" for i in range(1500)) == [f"k{i}" for i in range(1200, 1500)]
    assert len(list(ledger.get(f"k{i}" for i in range(1500)))) == 1200
