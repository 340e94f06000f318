"""The passage pool on disk: every passage negatives may come from (earlier versions' and this run's), with random
access by position and by id, memory-mapped so a 10M-passage pool costs page cache, not RSS.

Folder layout: ``ids.arrow`` (Arrow IPC, one string column), ``texts.bin`` + ``offsets.u64`` (UTF-8 texts back
to back, uncompressed: selection reads ~150k texts at random for 5k queries, and decompressing a zstd block per
read made it 5× slower), ``signatures-NNNNN.u32`` (MinHash rows, one file per part, in order: hard links to the
parts' MinHash index files, so the pool keeps no second copy of them), ``lookup.*`` and ``text-lookup.*`` (64-bit
hashes of the ids and of the texts, sorted, with the position of each), ``meta.json``. Positions are the BM25
index's document numbers.

The MinHash code (numba) is imported where it is used: the CLI imports this module through the run plan, and the
CLI's imports must not load numba (see ``pairforge.cli_stages.stage_inputs``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pairforge.config import DedupConfig

POOL_FORMAT = "pool-2"  # the folder layout: a pool written under another (an older workdir's) is built again


@dataclass(frozen=True)
class PoolPart:
    """One segment of the pool: its passage files and the MinHash index part aligned with them, row for row."""

    name: str
    passages: list[Path]
    index: Path


def build_pool(parts: Sequence[PoolPart], folder: Path, dedup: DedupConfig) -> Pool:
    """Write the pool of ``parts``, in order, to ``folder`` (aside, then renamed)."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    ids: list[pa.Array] = []
    hashes: list[np.ndarray] = []
    text_hashes: list[np.ndarray] = []
    offset, sizes = 0, []
    with (tmp / "offsets.u64").open("wb") as offsets, (tmp / "texts.bin").open("wb") as texts:
        np.zeros(1, dtype=np.uint64).tofile(offsets)
        for n, part in enumerate(parts):
            from pairforge.dedup.index import read_index  # numba: see the module docstring

            part_ids, part_sigs = read_index(part.index, dedup)
            rows = 0
            for batch_ids, batch_texts in _batches(part.passages):
                encoded = [t.encode("utf-8") for t in batch_texts]
                ends = offset + np.cumsum([len(e) for e in encoded], dtype=np.uint64)
                texts.write(b"".join(encoded))
                ends.tofile(offsets)
                offset = int(ends[-1]) if len(ends) else offset
                ids.append(batch_ids)
                hashes.append(id_hashes(batch_ids.to_pylist()))
                text_hashes.append(id_hashes(batch_texts))
                rows += len(batch_ids)
            if rows != len(part_ids):
                raise ValueError(f"{part.name}: {rows} passages but {len(part_ids)} MinHash rows")
            _share_signatures(part, part_sigs, tmp / f"signatures-{n:05d}.u32")
            sizes.append({"name": part.name, "rows": rows})
    all_ids = pa.concat_arrays(ids) if ids else pa.array([], type=pa.string())
    with pa.OSFile(str(tmp / "ids.arrow"), "wb") as sink, pa.ipc.new_file(sink, pa.schema([("id", pa.string())])) as w:
        w.write_table(pa.table({"id": all_ids}))
    for name, parts_ in (("lookup", hashes), ("text-lookup", text_hashes)):
        key = np.concatenate(parts_) if parts_ else np.zeros(0, dtype=np.uint64)
        order = np.argsort(key, kind="stable")
        key[order].tofile(tmp / f"{name}.u64")
        order.astype(np.int64).tofile(tmp / f"{name}.i64")
    meta = {"passages": len(all_ids), "num_perm": dedup.num_perm, "dedup": dedup.model_dump(), "parts": sizes}
    (tmp / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return Pool(folder)


def _share_signatures(part: PoolPart, sigs: np.ndarray, target: Path) -> None:
    """The part's MinHash rows at ``target``: a hard link to its index file (written once and never changed in
    place, so the link stays right), a copy where no link can be made (another file system)."""
    source = part.index / "signatures.u32"
    if len(sigs) and source.is_file():
        try:
            os.link(source, target)
            return
        except OSError:
            pass
    np.ascontiguousarray(sigs, dtype=np.uint32).tofile(target)


class PartRows:
    """Row ``i`` of the rows of several equally wide memory-mapped files, back to back (``rows[i]``)."""

    def __init__(self, files: Sequence[Path], sizes: Sequence[int], width: int) -> None:
        self.parts = [
            np.memmap(f, dtype=np.uint32, mode="r", shape=(n, width)) for f, n in zip(files, sizes, strict=True) if n
        ]
        self.starts = np.cumsum([0, *(len(p) for p in self.parts)])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, row: int) -> np.ndarray:
        if row < 0:  # from the end, as a NumPy array reads it
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(f"row {row} of {len(self)}")
        part = int(np.searchsorted(self.starts, row, side="right")) - 1
        return np.asarray(self.parts[part][row - self.starts[part]])


class Pool:
    """Read access to a pool folder written by ``build_pool``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.meta = json.loads((folder / "meta.json").read_text())
        self.size = int(self.meta["passages"])
        self._ids = pa.ipc.open_file(pa.memory_map(str(folder / "ids.arrow"))).read_all()["id"]
        self._offsets = np.fromfile(folder / "offsets.u64", dtype=np.uint64)
        self._texts = np.memmap(folder / "texts.bin", dtype=np.uint8, mode="r") if self._offsets[-1] else None
        self._by_id = (
            np.fromfile(folder / "lookup.u64", dtype=np.uint64),
            np.fromfile(folder / "lookup.i64", np.int64),
        )
        self._by_text = (
            np.fromfile(folder / "text-lookup.u64", dtype=np.uint64),
            np.fromfile(folder / "text-lookup.i64", dtype=np.int64),
        )
        parts = self.meta["parts"]
        files = [folder / f"signatures-{n:05d}.u32" for n in range(len(parts))]
        self.signatures = PartRows(files, [p["rows"] for p in parts], int(self.meta["num_perm"]))

    def sign(self, texts: Sequence[str]) -> np.ndarray:
        """MinHash signatures of ``texts`` under the pool's own settings (comparable with ``signatures``)."""
        from pairforge.dedup.index import dedup_signatures  # numba: see the module docstring

        return dedup_signatures(texts, DedupConfig.model_validate(self.meta["dedup"]))

    def id(self, position: int) -> str:
        return str(self._ids[position].as_py())

    def ids(self, positions: Sequence[int]) -> list[str]:
        return [str(x) for x in self._ids.take(pa.array(positions, type=pa.int64())).to_pylist()]

    def text(self, position: int) -> str:
        start, end = int(self._offsets[position]), int(self._offsets[position + 1])
        assert self._texts is not None
        return bytes(self._texts[start:end]).decode("utf-8")

    def texts(self, positions: Sequence[int]) -> list[str]:
        return [self.text(int(p)) for p in positions]

    def positions(self, ids: Sequence[str | None]) -> np.ndarray:
        """The position of each id in the pool, -1 where it is not there (or None)."""
        return self._find(ids, self._by_id, self.id)

    def positions_of_texts(self, texts: Sequence[str | None]) -> np.ndarray:
        """The position of a passage with exactly each text, -1 where there is none."""
        return self._find(texts, self._by_text, self.text)

    def _find(self, values: Sequence[str | None], lookup: tuple[np.ndarray, np.ndarray], read: Any) -> np.ndarray:
        keys_sorted, order = lookup
        out = np.full(len(values), -1, dtype=np.int64)
        wanted = [i for i, v in enumerate(values) if v is not None]
        if not wanted or not self.size:
            return out
        keys = id_hashes([values[i] for i in wanted])  # type: ignore[misc]
        at = np.searchsorted(keys_sorted, keys)
        for i, k, a in zip(wanted, keys, at, strict=True):
            while a < self.size and keys_sorted[a] == k:  # equal 64-bit hashes: confirm by the value itself
                if read(int(order[a])) == values[i]:
                    out[i] = order[a]
                    break
                a += 1
        return out


def id_hashes(ids: Sequence[str]) -> np.ndarray:
    """A 64-bit hash of each id (the lookup key)."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "little") for i in ids),
        dtype=np.uint64,
        count=len(ids),
    )


def _batches(files: Sequence[Path], rows: int = 8192) -> Iterator[tuple[pa.Array, list[str]]]:
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=["id", "text"]):
            yield batch.column(0), batch.column(1).to_pylist()
