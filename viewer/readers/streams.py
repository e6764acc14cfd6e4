"""Opening an uploaded or local file as one decompressed byte stream, within the limits."""
from __future__ import annotations

import gzip
import hashlib
import io
import time
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


class FollowStream(io.RawIOBase):
    """A log file still being written, read as it grows (import_logs --follow).

    At the end of the file `readinto` waits, looking again every `poll` seconds, instead of saying
    EOF; it hands out whole lines only, so that a line the writer has half written is read once its
    newline arrives, never parsed in two pieces. The stream ends (EOF) when told to (`finish()`:
    what the file holds by then is read first), when the file has not grown for `quiet` seconds,
    or at `limit` bytes; `stopped` says which ("end", "quiet", "limit"), and `withheld` how many
    bytes of an unfinished last line were left unread. A line longer than `max_line` is handed out
    unfinished, for the reader to refuse as it refuses any overlong line.

    `on_idle()`, when set, is called each time the stream is about to wait: the importer stores the
    decisions read so far then, rather than holding them (and a transaction) while nothing comes.
    `delivered` and `sha256()` count and hash the bytes handed out: what the run was read from.
    """

    def __init__(self, raw, *, quiet: float, poll: float = 0.2, limit: int | None = None,
                 max_line: int = 16 * 1024**2, clock=time.monotonic, sleep=time.sleep):
        self.raw = raw
        self.quiet, self.poll, self.limit, self.max_line = quiet, poll, limit, max_line
        self.clock, self.sleep = clock, sleep
        self.pending = bytearray()  # read from the file, not handed out yet
        self.taken = 0  # bytes read from the file
        self.delivered = 0
        self.hash = hashlib.sha256()
        self.ending = False
        self.full = False  # the file holds more than `limit` bytes
        self.stopped: str | None = None
        self.on_idle = None
        self.last_growth = clock()

    def readable(self):
        return True

    def finish(self) -> None:
        """Stop waiting: read what the file holds now, then end."""
        self.ending = True

    @property
    def withheld(self) -> int:
        return len(self.pending) if self.stopped else 0

    def sha256(self) -> str:
        return self.hash.hexdigest()

    def head(self, size: int) -> bytes:
        """The first whole lines (at most `size` bytes), without consuming them; waits for one line.
        b"" if none came before the stream stopped."""
        while b"\n" not in self.pending and len(self.pending) < size and self._wait():
            pass
        end = self.pending.rfind(b"\n", 0, size) + 1
        if not end and len(self.pending) >= size:  # a first line longer than that: its start
            end = size
        return bytes(self.pending[:end])

    def readinto(self, b):
        while True:
            n = min(self._ready(), len(b))
            if n:
                b[:n] = self.pending[:n]
                self.hash.update(b[:n])
                del self.pending[:n]
                self.delivered += n
                return n
            if not self._wait():
                return 0

    def _ready(self) -> int:
        """How many bytes can be handed out: up to the last newline (a long line, unfinished)."""
        end = self.pending.rfind(b"\n") + 1
        if not end and len(self.pending) > self.max_line:
            return len(self.pending)
        return end

    def _wait(self) -> bool:
        """Read more of the file, waiting for it if need be; False once the stream has stopped."""
        while self.stopped is None:
            if self.full:
                self.stopped = "limit"
                break
            room = 1 << 20 if self.limit is None else min(1 << 20, self.limit + 1 - self.taken)
            data = self.raw.read(room) or b""
            if self.limit is not None and self.taken + len(data) > self.limit:
                data = data[: self.limit - self.taken]  # the file goes on past the limit
                self.full = True
            if data:
                self.pending += data
                self.taken += len(data)
                self.last_growth = self.clock()
                return True
            if self.ending:
                self.stopped = "end"
            elif self.clock() - self.last_growth >= self.quiet:
                self.stopped = "quiet"
            else:
                if self.on_idle is not None:
                    self.on_idle()
                self.sleep(self.poll)
        return False
