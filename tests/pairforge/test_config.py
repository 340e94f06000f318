from __future__ import annotations

from pathlib import Path

import pytest

from pairforge.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = "corpora:\n  - {format: wudao, path: data/*.jsonl}\n"


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + "workdir: out\n"))
    assert config.corpora[0].path == str(tmp_path.resolve() / "data/*.jsonl")
    assert config.workdir == str(tmp_path.resolve() / "out")


def test_absolute_and_url_paths_are_kept(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "workdir: /abs/w\ncorpora:\n  - {format: jsonl, path: 's3://b/x.jsonl'}\n"))
    assert config.workdir == "/abs/w"
    assert config.corpora[0].path == "s3://b/x.jsonl"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (MINIMAL + "windw: {max_length: 10}\n", "windw"),
        (MINIMAL + "window: {max_lenght: 10}\n", "window.max_lenght"),
        ("corpora:\n  - {format: wudao, path: x, text_fild: t}\n", "corpora.0.text_fild"),
    ],
)
def test_unknown_keys_are_rejected_with_key_and_file(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"unknown key '{key}'" in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_format_is_an_error_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "corpora:\n  - {format: csv, path: x}\n"))
    assert "csv" in str(info.value) and "wudao" in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "corpora: []\n",  # nothing to read
        MINIMAL + "window: {min_length: 600, max_length: 512}\n",
        MINIMAL + "window: {overlap: 512, max_length: 512}\n",
        MINIMAL + "name: '../escape'\n",
        "- just a list\n",
        "corpora: [unclosed\n",
    ],
)
def test_invalid_configs_raise_config_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_fingerprint_is_canonical_and_content_sensitive(tmp_path: Path) -> None:
    a = load_config(write(tmp_path, MINIMAL + "window: {max_length: 512, min_length: 32}\n"))
    b = load_config(write(tmp_path, "window: {min_length: 32, max_length: 512}\n" + MINIMAL))
    c = load_config(write(tmp_path, MINIMAL + "window: {max_length: 513, min_length: 32}\n"))
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()
    assert len(a.fingerprint()) == 64


def test_shipped_configs_load() -> None:
    for path in sorted(Path(__file__).resolve().parents[2].joinpath("configs").glob("*.yaml")):
        assert load_config(path).corpora
