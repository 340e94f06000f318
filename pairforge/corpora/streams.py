"""Byte streams of one shard: .gz / .zst decompression that notices a cut or damaged file, and a UTF-8 view of
a shard in any supported encoding, without its byte-order mark, for the readers that parse one JSON value."""

from __future__ import annotations

import codecs
import gzip
import io
import zlib
from typing import IO

import zstandard

# Input decoded per step from a .zst shard: small, so one step's output stays bounded (32 MiB) even for data
# that compresses thirty-thousandfold (a 128 KiB block of one repeated byte takes 4 bytes). No slower than
# larger steps: measured 0.21 s (1 KiB) against 0.26 s (16 KiB) for 17 MB of Chinese text.
ZSTD_STEP = 1024
TEXT_STEP = 1 << 16
BUFFER = 1 << 16  # bytes a buffered reader asks for at a time


class TruncatedShardError(EOFError):
    """A compressed shard that ends inside a frame: it was cut (an interrupted copy or download)."""


class DamagedShardError(OSError):
    """A compressed shard whose data cannot be decoded (a corrupt block, a checksum that does not match)."""


# Errors of a damaged shard: past one, nothing more can be read from it. zlib.error (a corrupt deflate block
# in a .gz) is no OSError, so it is named here.
READ_ERRORS: tuple[type[Exception], ...] = (OSError, EOFError, zlib.error)


def open_binary(path: str) -> IO[bytes]:
    """Open a shard for streaming, decompressing .gz and .zst on the fly. A cut compressed shard raises
    EOFError (``TruncatedShardError`` for .zst) once the bytes before the cut are read; a damaged one OSError
    (``DamagedShardError`` for .zst) or zlib.error (.gz): all of them are in READ_ERRORS."""
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if path.endswith(".zst"):
        return io.BufferedReader(_ZstdReader(path), BUFFER)  # line iteration needs a buffered reader
    return open(path, "rb")


def open_utf8(path: str, encoding: str = "utf-8", errors: str = "strict") -> io.RawIOBase:
    """The shard's text as UTF-8 bytes, decoded with ``encoding`` and without a leading byte-order mark.
    Undecodable bytes raise UnicodeDecodeError where they are met (``errors="strict"``).

    The stream is unbuffered, so a reader (ijson) gets every byte before a cut or damage: a buffered read
    that fails part-way drops what it had gathered. Wrap it in ``io.BufferedReader`` to iterate lines."""
    return _Utf8Reader(open_binary(path), encoding, errors)


class _ChunkReader(io.RawIOBase):
    """A raw stream over the chunks ``_next_chunk`` makes (b"" at the end), handed out without copying them."""

    def __init__(self) -> None:
        super().__init__()
        self._chunk = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._chunk:
            self._chunk = memoryview(self._next_chunk())
        n = min(len(buffer), len(self._chunk))
        buffer[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n

    def _next_chunk(self) -> bytes:
        raise NotImplementedError


class _ZstdReader(_ChunkReader):
    """Decodes a .zst shard frame by frame and raises at the end if the last frame never ended.

    zstandard's ``stream_reader`` ends silently at a cut (a cut single-block file reads as empty), so each
    frame goes through a ``decompressobj``, whose ``eof`` says whether the frame was read to its end."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._file = open(path, "rb")
        self._dctx = zstandard.ZstdDecompressor()
        self._frame: zstandard.ZstdDecompressionObj | None = None  # the frame being decoded, if one has begun

    def _next_chunk(self) -> bytes:
        while data := self._file.read(ZSTD_STEP):
            if out := self._decode(data):
                return out
        if self._frame is not None:
            raise TruncatedShardError("the .zst stream ends inside a frame: the file is cut")
        return b""

    def _decode(self, data: bytes) -> bytes:
        out = []
        while data:
            if self._frame is None:
                self._frame = self._dctx.decompressobj()
            try:
                out.append(self._frame.decompress(data))
            except zstandard.ZstdError as exc:
                raise DamagedShardError(f"damaged .zst data: {exc}") from None
            if not self._frame.eof:
                break  # the frame goes on in the next input
            data, self._frame = self._frame.unused_data, None  # the next frame starts in the rest
        return b"".join(out)

    def close(self) -> None:
        self._file.close()
        super().close()


class _Utf8Reader(_ChunkReader):
    """Re-encodes a byte stream of ``encoding`` as UTF-8, dropping a byte-order mark at its start."""

    def __init__(self, source: IO[bytes], encoding: str, errors: str) -> None:
        super().__init__()
        self._source = source
        self._decoder = codecs.getincrementaldecoder(encoding)(errors)
        self._started = False  # a first character was seen (a BOM can only come before it)

    def _next_chunk(self) -> bytes:
        while data := self._source.read1(TEXT_STEP):  # type: ignore[attr-defined]  # one raw read
            if text := self._start(self._decoder.decode(data)):
                return text.encode("utf-8")
        return self._start(self._decoder.decode(b"", final=True)).encode("utf-8")

    def _start(self, text: str) -> str:
        if text and not self._started:
            text, self._started = text.removeprefix("\ufeff"), True
        return text

    def close(self) -> None:
        self._source.close()
        super().close()
