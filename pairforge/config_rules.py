"""The checks behind RunConfig's validators that need more than a bound: encoding names, credentials in URLs,
names that are keys, kind names, FlagEmbedding types and prompt versions. Each returns its value or raises
ValueError with a message that never quotes a rejected value that may be secret."""

from __future__ import annotations

import codecs
import re
import urllib.parse
from collections.abc import Mapping

# Encodings a corpus may declare, by Python's canonical codec name. Readers split lines on b"\n" before
# decoding, so only encodings where that byte is always a newline qualify (not UTF-16/32, not EBCDIC).
# gb18030 is the superset of GBK and GB2312: the one to choose for a "GBK" corpus.
TEXT_ENCODINGS = ("utf-8", "gb18030", "gbk", "gb2312", "big5", "big5hkscs")
KINDS = ("qp", "sp")
EXPORT_KINDS = (*KINDS, "human")
FLAGEMBEDDING_TYPES = ("normal", "only_1neg", "symmetric_sts", "symmetric_clustering", "symmetric_class")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
BLOCK_NAME = re.compile(r"[a-z0-9-]+")  # Prefect's rule for block document names
_SECRET_PARAMETER = re.compile(r"key|token|secret|pass|pwd|auth|sig|credential|session|bearer", re.I)
_KEY_PREFIX = re.compile(
    r"(sk|pk|rk)[-_][A-Za-z0-9]|AKIA[0-9A-Z]{12}|gh[pousr]_|xox[abpr]-|Bearer\b|eyJ[A-Za-z0-9_-]{10}"
)
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,39}")


def _looks_like_a_key(value: str, separator: str) -> bool:
    """A long token mixing lower case and digits with at most one separator, or any part between separators of 20
    or more characters mixing letters and digits (``sk_live_<32 hex>``, a 24-character key, ``AKIA...``): a key, not
    a name people give."""
    whole = (
        len(value) >= 32
        and any(c.isdigit() for c in value)
        and any(c.islower() for c in value)
        and value.count(separator) <= 1
    )
    return whole or any(
        len(part) >= 20 and any(c.isdigit() for c in part) and any(c.isalpha() for c in part)
        for part in value.split(separator)
    )


def check_no_credentials(url: str) -> str:
    """``url`` unchanged, or an error (that never quotes the URL) when it carries credentials: a user or
    password before the host, a query or path parameter named like a key, token or password (``?pwd=``,
    ``;password=``), a value or path segment that looks like a key, or a fragment (never sent to a server, so in
    a config URL it can only be something pasted)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "holds credentials (user:password@ before the host): put them in the environment, never in the config"
        )
    if parts.fragment:
        raise ValueError("has a #fragment, which no server receives: remove it (a credential goes in the environment)")
    named = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    segments = [urllib.parse.unquote(s) for s in re.split(r"[/;]", parts.path) if s]
    named += [tuple(s.split("=", 1)) for s in segments if "=" in s]  # type: ignore[misc]  # ;name=value
    for name, value in named:
        if _SECRET_PARAMETER.search(name) or _is_a_key(value):
            where = f"parameter {name!r}" if _PLAIN_NAME.fullmatch(name) else "a parameter"
            raise ValueError(f"{where} holds a credential: put it in the environment, never in the config")
    if any(_is_a_key(segment) for segment in segments):
        raise ValueError("a path segment looks like a key: put it in the environment, never in the config")
    return url


def check_protocol(url: str) -> str:
    """``url`` unchanged, or an error naming the package to install when fsspec cannot open its protocol here
    (``s3://`` without s3fs): at load time, not as an ImportError in the middle of a run."""
    import fsspec
    from fsspec.registry import known_implementations

    protocol = url.split("://", 1)[0]
    try:
        fsspec.get_filesystem_class(protocol)
    except ImportError:
        package = known_implementations.get(protocol, {}).get("class", protocol).split(".")[0]
        raise ValueError(f"a {protocol}:// URL needs the {package} package: pip install {package}") from None
    except ValueError:
        raise ValueError(f"{protocol}:// is no protocol fsspec knows") from None
    return url


def _is_a_key(value: str) -> bool:
    """A known key prefix (``sk-``, ``AKIA`` ...), or a long key-like token: 40 characters or more, so that ids
    that appear in real endpoint paths (a 32-hex account id, a UUID, a deployment name) pass."""
    return bool(_KEY_PREFIX.match(value)) or (
        len(value) >= 40 and (_looks_like_a_key(value, "-") or _looks_like_a_key(value, "_"))
    )


def check_kinds(mapping: Mapping[str, object], kinds: tuple[str, ...]) -> None:
    """An error naming the first key of ``mapping`` that is no kind of ``kinds``."""
    unknown = sorted(set(mapping) - set(kinds))
    if unknown:
        raise ValueError(f"unknown kind {unknown[0]!r} (kinds are {', '.join(kinds)})")


def canonical_encoding(name: str) -> str:
    """Python's name of the codec ``name`` spells (``UTF8`` → ``utf-8``); an error for one a reader cannot use."""
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        codec = ""
    codec = "utf-8" if codec == "utf-8-sig" else codec  # a BOM is dropped in any case
    if codec not in TEXT_ENCODINGS:
        raise ValueError(
            f"{name!r} is not supported: use one of {', '.join(TEXT_ENCODINGS)} (gb18030 also reads GBK and GB2312)"
        )
    return codec


def check_env_name(name: str) -> str:
    """``name`` when it can name an environment variable; the error does not quote it (it may be the key)."""
    if not ENV_NAME.fullmatch(name) or _looks_like_a_key(name, "_"):
        raise ValueError(
            "must name the environment variable that holds the key (letters, digits and _, such as "
            "OPENAI_API_KEY), not hold the key: put the key in the environment under that name"
        )
    return name


def check_block_name(name: str | None) -> str | None:
    """``name`` when it can name a Prefect Secret block; the error does not quote it (it may be the key)."""
    if name is not None and (not BLOCK_NAME.fullmatch(name) or _looks_like_a_key(name, "-")):
        raise ValueError(
            "must name a Prefect Secret block (lower-case letters, digits and -, such as openai-api-key), not "
            "hold the key: store the key in that block, or in the environment variable api_key_env names"
        )
    return name


def check_flagembedding_types(types: dict[str, str]) -> dict[str, str]:
    """FlagEmbedding ``type`` per export kind; an unknown value would silently train as ``normal``."""
    check_kinds(types, EXPORT_KINDS)
    for kind, value in types.items():
        if value not in FLAGEMBEDDING_TYPES:
            raise ValueError(f"{kind}: {value!r} is no FlagEmbedding type ({', '.join(FLAGEMBEDDING_TYPES)})")
    return types


def check_prompt_versions(versions: dict[str, str]) -> dict[str, str]:
    """Prompt version per kind, each a template that exists (a typo fails here, not after a paid run)."""
    from prompts import load_prompt  # a loader over data files: imported when a config is checked

    check_kinds(versions, KINDS)
    for kind, version in versions.items():
        try:
            load_prompt(kind, version)
        except FileNotFoundError as exc:
            raise ValueError(str(exc)) from None
    return versions
