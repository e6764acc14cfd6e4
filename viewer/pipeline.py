"""Reading a log in a second process while this one writes (issue 19: an import uses both cores).

`ParsedRows` forks a child that runs the kind's reader over the file and turns each decision into the
row the DecisionWriter inserts (`DecisionWriter.row_of`: time text, elapsed ms, values and cell as JSON;
on PostgreSQL the row's line of COPY text, `writer.copy_line`),
and sends the rows in batches through a pipe; this process, which holds the database connection and
the import's transaction, only inserts them. The reader's RunInfo and the writer's first and last
times come back at the end. An error in the child (a ReadError with its line, or any other) is raised
here as it would have been in one process, so the import's own handling (nothing half-stored, the
file and line named) is unchanged. The pipe holds a few batches at most: the child waits for the
writer, and memory stays flat.

Used for files of REPLAYWEB_IMPORT_PIPELINE_BYTES and more, where the platform forks and this process
runs no other thread (forking a threaded process can copy a lock another thread holds); the child
never touches the database connection it inherits, and leaves without closing it (os._exit).
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import threading
from collections.abc import Iterator
from typing import Any

from django.conf import settings

from .writer import copy_line

BATCH = 2000  # rows per message: large enough that a message costs little, small enough to stream
AHEAD = 16  # batches received and not yet written, at most (about 32,000 decisions)


def usable(size: int) -> bool:
    """Whether an import of `size` bytes reads in a second process."""
    threshold = settings.REPLAYWEB_IMPORT_PIPELINE_BYTES
    return 0 < threshold <= size and _alone() and "fork" in multiprocessing.get_all_start_methods()


def _alone() -> bool:
    """Whether this process runs no other thread (forking copies no lock another thread might hold)."""
    return threading.active_count() == 1


class ChildFailed(Exception):
    """The reading process failed in a way that could not be sent back as its own exception."""


class ParsedRows:
    """The rows of `reader.read(stream, info, ...)` as a second process makes them.

    Iterating gives batches of rows; `lines[0]` is kept at the last line read (with each batch, and
    at an error). Afterwards `info` holds what the reader learnt and `writer` (the caller's
    DecisionWriter) its first and last times, as if it had added every decision itself."""

    def __init__(self, reader, stream, info, writer, *, lines: list[int], **read_options: Any):
        self.info, self.writer, self.lines = info, writer, lines
        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_child, args=(send, reader, stream, info, writer, read_options), daemon=True,
        )
        self._process.start()
        send.close()  # the child's end: our copy closed, so the child's exit is seen as the pipe's end
        # A thread takes the messages off the pipe as they come, so the child never waits while this
        # process is inside an INSERT (which lets other threads run): up to AHEAD batches wait here.
        self._messages: queue.Queue = queue.Queue(maxsize=AHEAD)
        self._receiver = threading.Thread(target=self._receive_all, name="import-pipe", daemon=True)
        self._receiver.start()

    def _receive_all(self) -> None:
        while True:
            try:
                message = self._receive.recv()
            except (EOFError, OSError):
                message = ("gone",)
            self._messages.put(message)
            if message[0] != "rows":
                return

    def __iter__(self) -> Iterator[list[tuple]]:
        while True:
            message = self._messages.get()
            what = message[0]
            if what == "gone":
                self._process.join()
                raise ChildFailed(f"the reading process stopped without a word (exit code "
                                  f"{self._process.exitcode})")
            if what == "rows":
                self.lines[0] = message[2] or self.lines[0]
                yield message[1]
            elif what == "end":
                _, info_state, first_ts, last_ts = message
                vars(self.info).update(info_state)  # the reader's findings, cleaned as they were set
                self.writer.first_ts, self.writer.last_ts = first_ts, last_ts
                self.close()
                return
            else:  # "error"
                self.lines[0] = message[2] or self.lines[0]
                self.close()
                raise message[1]

    def close(self) -> None:
        """Stop the child if it still runs (an error here, a cancelled job) and wait for it and for
        the receiving thread (which the end of the pipe, or room in its queue, lets go)."""
        if self._process.is_alive():
            self._process.terminate()
        while self._process.is_alive() or self._receiver.is_alive():
            try:
                self._messages.get_nowait()  # room for a put the receiver may be waiting on
            except queue.Empty:
                pass
            self._process.join(0.02)
            self._receiver.join(0.02)
        self._receive.close()


def rows_here(reader, stream, info, writer, *, lines: list[int], **read_options: Any) -> Iterator[list[tuple]]:
    """The same batches of rows as ParsedRows, read in this process (a small file, or beside other threads)."""
    rows, row_of = [], writer.row_of
    for d in reader.read(stream, info, **read_options):
        rows.append(row_of(d))
        lines[0] = d.line or lines[0]
        if len(rows) >= BATCH:
            yield rows
            rows = []
    if rows:
        yield rows


def _child(send, reader, stream, info, writer, read_options) -> None:
    # The importing process decides when reading stops: SIGTERM (close) ends the child at once, whatever
    # handler the parent had (import_logs turns it into KeyboardInterrupt); Ctrl-C is the parent's to handle.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    last_line, rows = 0, []
    try:
        row_of = writer.row_of
        if writer.copy_sql:  # PostgreSQL: the COPY lines made here too, the writer only sends them on
            row_of = lambda d: copy_line(writer.row_of(d))  # noqa: E731
        for d in reader.read(stream, info, **read_options):
            rows.append(row_of(d))
            last_line = d.line or last_line
            if len(rows) >= BATCH:
                send.send(("rows", rows, last_line))
                rows = []
        if rows:
            send.send(("rows", rows, last_line))
        send.send(("end", dict(vars(info)), writer.first_ts, writer.last_ts))
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the writing process
        try:
            pickle.dumps(exc)
            failure = exc
        except Exception:  # noqa: BLE001 - an exception that does not pickle: its words
            failure = ChildFailed(f"{exc.__class__.__name__}: {exc}")
        try:
            send.send(("error", failure, last_line))
        except Exception:  # noqa: BLE001 - the writer is gone: nothing to tell
            pass
    finally:
        send.close()
        os._exit(0)  # no cleanup of what the parent owns (its database connection, its files)
