from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from pairforge.config import ConfigError, RunConfig, load_config, load_yaml


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


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        # generate: counts are items per request, each kind once, prompts that exist, room for the answer
        (MINIMAL + "generate: {counts: {qp: 0, sp: -3}}\n", "generate.counts", "at least 1"),
        (MINIMAL + "generate: {counts: {sp: -3}}\n", "generate.counts", "at least 1"),
        (MINIMAL + "generate: {counts: {qa: 2}}\n", "generate.counts", "unknown kind 'qa'"),
        (MINIMAL + "generate: {kinds: [qp, sp, qp]}\n", "generate.kinds", "qp listed twice"),
        (MINIMAL + "generate: {prompt_versions: {qp: v9}}\n", "generate.prompt_versions", "qp/v9.zh not found"),
        (MINIMAL + "generate: {prompt_versions: {qa: v1}}\n", "generate.prompt_versions", "unknown kind 'qa'"),
        (MINIMAL + "generate: {sampling: {max_tokens: 4096}}\n", "generate", "max_model_len"),
        # every min <= max
        (MINIMAL + "filter: {query_min_chars: 12, query_max_chars: 8}\n", "filter", "query_min_chars (12)"),
        (MINIMAL + "filter: {passage_min_chars: 500, passage_max_chars: 400}\n", "filter", "passage_min_chars"),
        (MINIMAL + "mine: {range_min: 50, range_max: 50}\n", "mine", "range_min (50) must be smaller"),
        (MINIMAL + "mine: {range_min: 60, range_max: 50}\n", "mine", "range_min (60) must be smaller"),
        (MINIMAL + "mine: {range_min: 45, range_max: 50, num_negatives: 7}\n", "mine", "only 5 candidates"),
        # dedup: datasketch's weights, and a threshold the signature can resolve
        (MINIMAL + "dedup: {false_positive_weight: 0.5}\n", "dedup", "sum to 1"),
        (MINIMAL + "dedup: {threshold: 0.99, num_perm: 16}\n", "dedup", "num_perm"),
        # export and flow
        (MINIMAL + "export: {length_buckets: [-1, 500]}\n", "export.length_buckets.0", "greater than or equal to 0"),
        (MINIMAL + "export: {flagembedding_types: {qp: nromal}}\n", "export.flagembedding_types", "'nromal'"),
        (MINIMAL + "export: {query_instructions: {qa: 检索}}\n", "export.query_instructions", "unknown kind 'qa'"),
        (MINIMAL + "flow: {dask_address: 'tcp://10.0.0.1:8786'}\n", "flow", "task_runner"),
        (MINIMAL + "flow: {task_runner: dask, ray_address: 'ray://10.0.0.1:10001'}\n", "flow", "'dask'"),
        (MINIMAL + "generate: {backend: vllm-ray, ray: {actors: 0}}\n", "generate.ray.actors", "greater than"),
        (MINIMAL + "generate: {backend: vllm-ray, sampling: {max_tokens: 4096}}\n", "generate", "max_model_len"),
        # corpora
        (MINIMAL + "  - {format: jsonl, path: data/*.jsonl}\n", "corpora", "corpora 0 and 1"),
        (MINIMAL.replace("}", ", encoding: utf-16}"), "corpora.0.encoding", "'utf-16' is not supported"),
        (MINIMAL + "generate: {openai: {base_url: '127.0.0.1:8000/v1'}}\n", "generate.openai.base_url", "http"),
    ],
)
def test_nonsensical_settings_are_config_errors_naming_the_key(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"{path}: {key}: " in message
    assert words in message, message
    assert "Value error," not in message  # pydantic's prefix says nothing to a user


def test_settings_at_their_bounds_are_accepted(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            MINIMAL + "generate: {counts: {qp: 1, sp: 1}, kinds: [sp], sampling: {max_tokens: 4095}}\n"
            "filter: {query_min_chars: 8, query_max_chars: 8, passage_min_chars: 400, passage_max_chars: 400}\n"
            "mine: {range_min: 43, range_max: 50, num_negatives: 7}\n"
            "dedup: {threshold: 0.9375, num_perm: 16, false_positive_weight: 0.3, false_negative_weight: 0.7}\n"
            "flow: {task_runner: dask, dask_address: 'tcp://10.0.0.1:8786'}\n",
        )
    )
    assert config.mine.range_max - config.mine.range_min == config.mine.num_negatives


SECRET = "sk-proj-Zx81QmT4vLw0Rb7NcY2eKd9S"


@pytest.mark.parametrize(
    ("openai", "key"),
    [
        (f"{{api_key_env: {SECRET}}}", "api_key_env"),
        (f"{{api_key_env: 'Bearer {SECRET}'}}", "api_key_env"),
        ("{api_key_env: Zx81QmT4vLw0Rb7NcY2eKd9SuPq3HfA6}", "api_key_env"),  # a key that is a valid name
        ("{api_key_secret: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b}", "api_key_secret"),
        (f"{{base_url: 'http://user:{SECRET}@127.0.0.1:8000/v1'}}", "base_url"),
        (f"{{base_url: 'http://{SECRET}@127.0.0.1:8000/v1'}}", "base_url"),
        (f"{{base_url: 'https://api.example.com/v1?api_key={SECRET}'}}", "base_url"),
    ],
)
def test_secrets_in_the_config_are_rejected_without_echoing_them(tmp_path: Path, openai: str, key: str) -> None:
    text = MINIMAL + f"generate: {{backend: openai, openai: {openai}}}\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"{path}: generate.openai.{key}: " in message and "environment" in message
    secret = yaml.safe_load(text)["generate"]["openai"][key]
    for part in (SECRET, secret, "Zx81QmT4", "9f86d081"):
        assert part not in message
    with pytest.raises(ValidationError) as direct:  # nor do pydantic's own errors, wherever they are printed
        RunConfig.model_validate(yaml.safe_load(text))
    assert (
        SECRET not in str(direct.value) and "Zx81QmT4" not in str(direct.value) and "9f86d081" not in str(direct.value)
    )


def test_credentials_in_the_store_url_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + f"store: 's3://AKIA:{SECRET}@bucket/prefix'\n")
    with pytest.raises(ConfigError, match=r"store: .*environment") as info:
        load_config(path)
    assert SECRET not in str(info.value)


def test_invalid_yaml_is_located_without_quoting_the_text(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + f"generate: {{openai: {{api_key_env: [{SECRET}}}}}\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line 3, column \d+") as info:
        load_config(path)
    assert SECRET not in str(info.value)


def test_real_variable_names_and_urls_are_accepted(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            MINIMAL + "generate:\n  backend: openai\n  openai:\n    api_key_env: DEEPSEEK_API_KEY_2\n"
            "    api_key_secret: openai-api-key\n    base_url: 'https://api.deepseek.com/v1?api-version=2024-06-01'\n",
        )
    )
    assert config.generate.openai.api_key_env == "DEEPSEEK_API_KEY_2"


@pytest.mark.parametrize(
    "url",
    [
        f"https://api.example.com/v1?pwd={SECRET}",
        f"https://api.example.com/v1?password={SECRET}",
        f"https://api.example.com/v1?x={SECRET}",  # a value that is a key, whatever its name
        f"https://api.example.com/{SECRET}/v1",
        f"https://api.example.com/v1;token={SECRET}",
        f"https://api.example.com/v1#{SECRET}",
        f"https://api.example.com/v1#access_token={SECRET}",
        "https://api.example.com/v1/k9Qz7wXr2mTb8vLp4nYc6hJd3sFa5gEu1oIiUe0R",  # a 40-character token
    ],
)
def test_a_secret_in_base_url_path_query_or_fragment_is_refused(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, MINIMAL + f"generate: {{backend: openai, openai: {{base_url: '{url}'}}}}\n")
    with pytest.raises(ConfigError, match=r"generate\.openai\.base_url: .*(environment|fragment)") as info:
        load_config(path)
    for part in (SECRET, "Zx81QmT4", "k9Qz7wXr"):
        assert part not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://gateway.ai.cloudflare.com/v1/0123456789abcdef0123456789abcdef/my-gateway/openai",
        "https://my.openai.azure.com/openai/deployments/gpt-4o-mini-2024-07-18?api-version=2024-06-01",
        "https://ep.example.com/serving/123e4567-e89b-12d3-a456-426614174000/v1",
    ],
)
def test_real_endpoint_paths_are_accepted(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, MINIMAL + f"generate: {{backend: openai, openai: {{base_url: '{url}'}}}}\n")
    assert load_config(path).generate.openai.base_url == url


@pytest.mark.parametrize(
    ("text", "line", "first"),
    [
        ("generate: {backend: openai}\nname: x\ngenerate: {kinds: [qp]}\n", 5, 3),
        ("generate:\n  backend: openai\n  backend: vllm\n", 5, 4),
    ],
)
def test_a_duplicate_key_is_refused_naming_file_and_line(tmp_path: Path, text: str, line: int, first: int) -> None:
    path = write(tmp_path, MINIMAL + text)
    where = rf"{path}: not valid YAML at line {line}, .*given twice \(first at line {first}\)"
    with pytest.raises(ConfigError, match=where):
        load_config(path)


def test_yaml_merge_keys_may_be_overridden_and_plain_yaml_loads() -> None:
    text = "a: &a {x: 1, y: [1, 2]}\nb:\n  <<: *a\n  x: 2\nc: [{k: 1}, {k: 2}]\n"
    assert load_yaml(text) == {"a": {"x": 1, "y": [1, 2]}, "b": {"x": 2, "y": [1, 2]}, "c": [{"k": 1}, {"k": 2}]}
    with pytest.raises(yaml.YAMLError, match="given twice"):
        load_yaml("c: [{k: 1, k: 2}]\n")
