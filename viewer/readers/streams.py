"""Opening an uploaded or local file as one decompressed byte stream, within the limits."""
from __future__ import annotations

import gzip
import io
import zlib

from .base import ReadError
from .detect import GZIP_MAGIC


class CappedReader(io.RawIOBase):
    """Reads a decompressing stream and stops at `limit` bytes: the gzip-bomb guard.

    Decompression errors become ReadErrors, so a truncated or fake gzip is a clear refusal.
    """

    def __init__(self, inner, limit: int):
        self.inner = inner
        self.limit = limit
        self.total = 0

    def readable(self):
        return True

    def readinto(self, b):
        try:
            data = self.inner.read(min(len(b), self.limit + 1 - self.total))
        except EOFError:
            raise ReadError("the gzip data is truncated (the file ends before the end of the compressed stream)") from None
        except (gzip.BadGzipFile, zlib.error, OSError) as exc:
            raise ReadError(f"the gzip data is corrupt ({exc})") from None
        self.total += len(data)
        if self.total > self.limit:
            raise ReadError(
                f"decompresses to more than {self.limit:,} bytes (REPLAYWEB_MAX_DECOMPRESSED_BYTES); "
                "refused as a possible gzip bomb"
            )
        b[: len(data)] = data
        return len(data)


def open_decompressed(fileobj, name: str, max_decompressed: int):
    """A buffered binary stream of the file's content, gunzipped when it is gzip."""
    fileobj.seek(0)
    magic = fileobj.read(2)
    fileobj.seek(0)
    if magic == GZIP_MAGIC:
        inner = gzip.GzipFile(fileobj=fileobj, mode="rb")
        return io.BufferedReader(CappedReader(inner, max_decompressed), buffer_size=1 << 20)
    if name.lower().endswith(".gz"):
        raise ReadError("the name ends in .gz but the file is not gzip-compressed")
    return io.BufferedReader(CappedReader(fileobj, max_decompressed), buffer_size=1 << 20)
