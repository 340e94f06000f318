"""The dataset card's four histograms (passage and query lengths, positive and negative scores) as PNG bytes.
matplotlib's object API with the Agg canvas: no pyplot state, no display needed."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PLOTS = {
    "passage_length": ("plots/passage_length.png", "Passage length (characters)"),
    "query_length": ("plots/query_length.png", "Query length (characters)"),
    "positive_scores": ("plots/positive_scores.png", "Positive scores (as mined: BM25 or cosine)"),
    "negative_scores": ("plots/negative_scores.png", "Negative scores (as mined: BM25 or cosine)"),
}


def plot_values(examples: list[Path], passage_shards: list[Path]) -> dict[str, np.ndarray]:
    """The values behind each histogram (empty arrays for a missing stage), read one file at a time."""
    values = {name: np.zeros(0) for name in PLOTS}
    if passage_shards:
        values["passage_length"] = np.concatenate([_char_lengths(s) for s in passage_shards])
    parts: dict[str, list[np.ndarray]] = {name: [] for name in PLOTS if name != "passage_length"}
    for path in examples:
        table = pq.read_table(path, columns=["query", "pos_scores", "neg_scores"])
        parts["query_length"].append(pc.utf8_length(table["query"]).to_numpy())
        for name, column in (("positive_scores", "pos_scores"), ("negative_scores", "neg_scores")):
            flat = pc.list_flatten(table[column])
            parts[name].append(pc.drop_null(flat).to_numpy(zero_copy_only=False).astype(float))
    for name, arrays in parts.items():
        if arrays:
            values[name] = np.concatenate(arrays)
    return values


def _char_lengths(shard: Path) -> np.ndarray:
    """Passage lengths from ingest's ``char_len`` column, or from the texts of a shard without it."""
    if "char_len" in pq.read_schema(shard).names:
        return pq.read_table(shard, columns=["char_len"])["char_len"].to_numpy()
    return pc.utf8_length(pq.read_table(shard, columns=["text"])["text"]).to_numpy()


def render_histogram(values: np.ndarray, title: str) -> bytes:
    """One histogram as PNG bytes, with the count and median in the corner; 'no data' when empty."""
    figure = Figure(figsize=(6, 3.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if len(values):
        axes.hist(values, bins=min(40, max(5, len(np.unique(values)))), color="#4c72b0", edgecolor="white")
        label = f"n={len(values):,}  median={np.median(values):.4g}"
        axes.text(0.98, 0.95, label, transform=axes.transAxes, ha="right", va="top", fontsize=9)
    else:
        axes.text(0.5, 0.5, "no data", transform=axes.transAxes, ha="center", va="center")
    axes.set_title(title, fontsize=10)
    axes.set_ylabel("count")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def render_plots(examples: list[Path], passage_shards: list[Path]) -> dict[str, bytes]:
    """``{relative path: PNG bytes}`` for the four histograms."""
    values = plot_values(examples, passage_shards)
    return {path: render_histogram(values[name], title) for name, (path, title) in PLOTS.items()}
