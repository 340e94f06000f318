"""RunConfig: the validated YAML that drives a run.

Unknown keys are errors (a typo must not silently fall back to a default), relative paths resolve against the
config file's folder, and ``fingerprint()`` names the config's content for caching and lineage.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from pairforge.config_generate import GenerateConfig, OpenAIConfig, SamplingConfig, TransformersConfig, VllmConfig
from pairforge.config_inputs import (
    ConfigError,
    CorpusConfig,
    IngestConfig,
    JsonlCorpus,
    M3eCorpus,
    NormalizeConfig,
    PairsTsvCorpus,
    ParquetCorpus,
    SimclueCorpus,
    SquadCorpus,
    Strict,
    WindowConfig,
    WudaoCorpus,
)
from pairforge.config_judge import JudgeConfig
from pairforge.config_rules import check_no_credentials, check_protocol
from pairforge.config_stages import DedupConfig, ExportConfig, FilterConfig, FlowConfig, GateConfig, MineConfig

__all__ = [
    "ConfigError",
    "CorpusConfig",
    "DedupConfig",
    "ExportConfig",
    "FilterConfig",
    "FlowConfig",
    "GateConfig",
    "GenerateConfig",
    "IngestConfig",
    "JsonlCorpus",
    "JudgeConfig",
    "M3eCorpus",
    "MineConfig",
    "NormalizeConfig",
    "OpenAIConfig",
    "PairsTsvCorpus",
    "ParquetCorpus",
    "RunConfig",
    "SamplingConfig",
    "SimclueCorpus",
    "SquadCorpus",
    "Strict",
    "TransformersConfig",
    "VllmConfig",
    "WindowConfig",
    "WudaoCorpus",
    "check_locations",
    "load_config",
]


class RunConfig(Strict):
    """A run is one YAML file, validated strictly: an unknown key is an error naming the key and the file, and
    relative paths resolve against the config file's folder. ``RunConfig.fingerprint()`` (sha256 of the
    canonical dump) names a config's content.

    Beyond the types and bounds below, a config is checked as a whole before any work starts. Each violation is
    an error naming the file and the key (``run.yaml: filter: query_min_chars (12) is larger than
    query_max_chars (8): nothing could pass``), and no error message quotes a rejected value that may be a
    secret. The cross-field rules are listed with their sections below; besides them:

    - No two corpus entries name the same path (its records would be read twice).
    - A key given twice in one YAML mapping is refused with the line of both (PyYAML would keep the second
      silently, and a repeated section would drop every setting of the first).
    - Secrets stay out of the config: ``generate.openai.api_key_env`` must be an environment variable name
      (``[A-Za-z_][A-Za-z0-9_]*``, not a 32+ character token mixing lower case and digits), and
      ``api_key_secret`` a Prefect block name (``[a-z0-9-]+``, same token rule); ``generate.openai.base_url``
      must be an ``http(s)://`` URL, and neither it nor an fsspec ``store`` URL may carry credentials
      (``user:secret@host``; a query or ``;`` parameter named like a key, token, password or signature,
      ``?pwd=`` included; a value or path segment that is a known key form (``sk-…``, ``AKIA…``, a JWT) or a
      40+ character key-like token; a ``#fragment``): put them in the environment.
    - ``store`` and ``workdir`` must not contain each other."""

    name: str = Field(
        default="pairforge",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Dataset name: letters, digits, . _ - (the versions live under STORE/NAME/).",
    )
    workdir: str = Field(default="work", description="Where the stages write their shards, ledgers and logs.")
    store: str = Field(
        default="store", description="Versioned dataset store: a folder or an fsspec URL (s3://bucket/prefix)."
    )
    corpora: list[CorpusConfig] = Field(
        min_length=1, description="One or more corpus entries, each {format, path} plus that reader's options."
    )
    normalize: NormalizeConfig = NormalizeConfig()
    window: WindowConfig = WindowConfig()
    ingest: IngestConfig = IngestConfig()
    generate: GenerateConfig = GenerateConfig()
    dedup: DedupConfig = DedupConfig()
    filter: FilterConfig = FilterConfig()
    judge: JudgeConfig = JudgeConfig()
    mine: MineConfig = MineConfig()
    export: ExportConfig = ExportConfig()
    gate: GateConfig | None = Field(default=None, description="The training-effect gate after export (off: None).")
    flow: FlowConfig = FlowConfig()

    def redacted(self) -> dict[str, Any]:
        """The config as JSON with nothing secret in it (what flows, manifests and Prefect's database receive): a
        value in ``api_key_env`` that is not a variable name is replaced, credentials in URLs are cut."""
        dump = _strip_userinfo(self.model_dump(mode="json"))
        openai = dump["generate"]["openai"]
        for section in (openai, dump["judge"]["openai"]):
            if section and not _ENV_NAME.fullmatch(section["api_key_env"]):
                section["api_key_env"] = "<redacted: not a variable name>"
        return dump

    @field_validator("store")
    @classmethod
    def _check_store(cls, store: str) -> str:
        return check_protocol(check_no_credentials(store)) if "://" in store else store

    @field_validator("corpora")
    @classmethod
    def _check_distinct_corpora(cls, corpora: list[Any]) -> list[Any]:
        seen: dict[str, int] = {}
        for i, corpus in enumerate(corpora):
            if corpus.path in seen:  # the path itself is not quoted: an object-store URL may be private
                raise ValueError(f"corpora {seen[corpus.path]} and {i} name the same path: it would be read twice")
            seen[corpus.path] = i
        return corpora

    @model_validator(mode="after")
    def _check_round_trip_dense(self) -> RunConfig:
        if self.filter.consistency_retriever != "bm25" and self.mine.retriever == "bm25":
            raise ValueError(
                f"filter.consistency_retriever is {self.filter.consistency_retriever!r} but mine.retriever is 'bm25': "
                "the pool has no dense embeddings (set mine.retriever to dense or both, and mine.dense_model)"
            )
        return self

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON dump: equal configs give equal fingerprints."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def _strip_userinfo(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_userinfo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_userinfo(v) for v in value]
    if isinstance(value, str) and "://" in value:
        return _USERINFO.sub("***@", value)
    return value


def check_locations(config: RunConfig, source: str = "config") -> None:
    """``store`` and ``workdir`` must not contain each other: a run rewrites its workdir, and a version must never
    be inside it (nor the workdir inside a version)."""
    if "://" in config.store:
        return
    store, workdir = Path(config.store).resolve(), Path(config.workdir).resolve()
    if store == workdir or store in workdir.parents or workdir in store.parents:
        raise ConfigError(f"{source}: store ({store}) and workdir ({workdir}) must not contain each other")


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping: by default the second silently replaces
    the first, and a repeated section (``generate:`` twice) would drop every setting of the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # ``<<: *anchor`` entries may be overridden by the mapping's own keys
            key = self.construct_object(key_node, deep=deep)
            try:
                seen = first.setdefault(key, key_node)
            except TypeError:  # an unhashable key: the base constructor reports it
                continue
            if seen is not key_node:
                named = f"key {key!r}" if isinstance(key, str) and _PLAIN_KEY.fullmatch(key) else "a key"
                raise yaml.constructor.ConstructorError(
                    None, None, f"{named} given twice (first at line {seen.start_mark.line + 1})", key_node.start_mark
                )
        return super().construct_mapping(node, deep)


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,39}")  # a setting's name, safe to quote (not a pasted secret)


def load_yaml(text: str) -> Any:
    """Parse YAML safely, refusing duplicate keys (``yaml.YAMLError`` with the line of the second one)."""
    loader = _UniqueKeyLoader(text)  # what yaml.load does, with a SafeLoader subclass
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML RunConfig; relative paths resolve against the file's folder."""
    path = Path(path)
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        # Located, not quoted: PyYAML's message repeats the line, which may hold a pasted key.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or 'unreadable'}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(path, exc)) from None
    config = _resolve_paths(config, path.resolve().parent)
    check_locations(config, str(path))
    for file in config.gate.eval if config.gate else []:
        if "://" not in file and not Path(file).is_file():
            raise ConfigError(f"{path}: gate.eval: {file}: no such file")
    return config


def _describe(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"] if not _is_union_tag(p)) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown key '{key}'")
        else:
            lines.append(f"{path}: {key}: {err['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def _is_union_tag(part: Any) -> bool:
    # pydantic puts the discriminator value into the error location (corpora.0.wudao.foo); drop it.
    return part in {"wudao", "m3e", "simclue", "pairs_tsv", "squad", "jsonl", "parquet"}


def _resolve_paths(config: RunConfig, base: Path) -> RunConfig:
    def resolve(p: str) -> str:
        return p if "://" in p or Path(p).is_absolute() else os.path.normpath(base / p)

    corpora = [c.model_copy(update={"path": resolve(c.path)}) for c in config.corpora]
    window = config.window
    if window.tokenizer and (base / window.tokenizer).exists():
        window = window.model_copy(update={"tokenizer": resolve(window.tokenizer)})
    filter_ = config.filter.model_copy(
        update={"contamination": [c.model_copy(update={"path": resolve(c.path)}) for c in config.filter.contamination]}
    )
    dedup = config.dedup.model_copy(update={"against": [resolve(p) for p in config.dedup.against]})
    mine = config.mine
    if mine.dense_model and (base / mine.dense_model).exists():
        mine = mine.model_copy(update={"dense_model": resolve(mine.dense_model)})
    export = config.export
    if export.teacher and (base / export.teacher).exists():
        export = export.model_copy(update={"teacher": resolve(export.teacher)})
    gate = config.gate
    if gate is not None:
        train = gate.train
        if train.static_tokenizer and (base / train.static_tokenizer).exists():
            train = train.model_copy(update={"static_tokenizer": resolve(train.static_tokenizer)})
        if (base / train.student).exists():
            train = train.model_copy(update={"student": resolve(train.student)})
        gate = gate.model_copy(update={"eval": [resolve(p) for p in gate.eval], "train": train})
    generate = config.generate
    if (base / generate.model).exists():
        generate = generate.model_copy(update={"model": resolve(generate.model)})
    judge = config.judge
    if judge.model and (base / judge.model).exists():
        judge = judge.model_copy(update={"model": resolve(judge.model)})
    return config.model_copy(
        update={
            "corpora": corpora,
            "judge": judge,
            "workdir": resolve(config.workdir),
            "store": resolve(config.store),
            "window": window,
            "generate": generate,
            "filter": filter_,
            "dedup": dedup,
            "mine": mine,
            "export": export,
            "gate": gate,
        }
    )
