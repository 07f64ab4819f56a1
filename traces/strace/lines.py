"""The reference line reader for strace logs: a file's lines -> completed calls.

It reads what `strace -f -tt -e trace=memory,process -o FILE CMD` writes, in every
variant: `-t`, `-tt`, `-ttt` or no timestamps, `-T` (call durations), no `-f` (one
process, no pid column), `-ff` (one file per pid, FILE.PID; give them all, they are
merged by time). Calls split by other threads' output (`name(args <unfinished ...>` ...
`<... name resumed>rest`) are joined; failed calls (`= -1 ENOMEM ...`) are kept, marked
failed; signals, strace's own messages and calls the process model does not read are
dropped; `+++ exited with N +++` and `+++ killed by SIG +++` end a thread.

This is the one full statement of the line grammar, in regexes: it reads every log and
words every error (`FILE:LINE: what is wrong`, or with `lenient` the line is skipped and
counted by reason). The compiled scanner (scan.py) must read each line exactly as
`LineReader.feed` does wherever it answers, and gives the file back to this reader
wherever it is not sure.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ptpair.traces.format import TraceError

MEMORY_CALLS = {"mmap", "mmap2", "munmap", "brk", "mremap", "madvise", "mprotect", "pkey_mprotect"}
PROCESS_CALLS = {"execve", "execveat", "fork", "vfork", "clone", "clone2", "clone3", "exit", "exit_group"}
# why a line is refused (or, lenient, skipped and counted): Trace.skipped's keys
BAD_EXIT, BAD_NOT_STRACE = "bad exit line", "not strace output"
BAD_TRUNCATED, BAD_NO_RESULT = "truncated line", "no result"

# tid, then an optional timestamp: -t HH:MM:SS, -tt HH:MM:SS.us, -ttt epoch.us
_PREFIX = re.compile(r"(?:\[pid\s+)?(\d+)\]?\s+")
_TIME = re.compile(r"(\d\d:\d\d:\d\d(?:\.\d+)?|\d{6,}\.\d+)\s+")
_CALL = re.compile(r"([a-z_][a-z0-9_]*)\((.*)$", re.S)
_RESUMED = re.compile(r"<\.\.\. ([a-z_][a-z0-9_]*) resumed>\s?(.*)$", re.S)
_RESULT = re.compile(r"\)\s+=\s+(-?\d+|0x[0-9a-f]+|\?)(?:\s+(E[A-Z0-9]+)[^<]*)?(?:\s*<[\d.]+>)?\s*$")
_EXITED = re.compile(r"\+\+\+ (exited with -?\d+|killed by SIG[A-Z0-9]+(?: \(core dumped\))?|"
                     r"superseded by execve in pid \d+) \+\+\+$")


def _time(text: str | None) -> float:
    if text is None:
        return math.nan
    if ":" in text:
        h, m, s = text.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    return float(text)


def _ret(text: str) -> int:
    """A call's value: decimal or 0x hex (leading zeros allowed, unlike int(text, 0))."""
    return int(text, 16) if text.startswith("0x") else int(text)


_NESTING = re.compile(r'["(\[{]')


def _split_args(s: str) -> list[str]:
    """Top-level comma-separated arguments (brackets, braces, parentheses and strings nest)."""
    if not _NESTING.search(s):  # the common case (mmap, munmap, brk, ...): a plain split
        return [a.strip() for a in s.split(",")] if s.strip() else []
    out, depth, cur, quote, esc = [], 0, [], False, False
    for ch in s:
        if quote:
            cur.append(ch)
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                quote = False
            continue
        if ch == '"':
            quote = True
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if cur or out:
        out.append("".join(cur).strip())
    return out


@dataclass(slots=True)
class Call:
    """One completed system call (or a thread's end) of the log."""

    line: int  # where the call started (1-based, in its file)
    source: str
    tid: int
    time: float
    name: str  # syscall name, or "+++" for a thread's end
    args: list = field(default_factory=list)
    ret: int | None = None  # None: '?' or failed
    failed: bool = False


class LineReader:
    """Parses the lines of one file into calls, joining unfinished/resumed halves."""

    def __init__(self, source: str, file_tid: int | None, lenient: bool):
        self.source, self.file_tid, self.lenient = source, file_tid, lenient
        self.pending: dict[int, tuple[int, float, str, str]] = {}
        self.calls: list[Call] = []
        self.skipped: dict[str, int] = {}
        self.first_bad: tuple[int, str] | None = None

    def bad(self, line: int, reason: str, message: str):
        if not self.lenient:
            raise TraceError(self.source, line, message)
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if self.first_bad is None:
            self.first_bad = (line, message)

    def feed(self, n: int, text: str, last: bool):
        rest = text.rstrip("\n")
        if not rest.strip():
            return
        tid = self.file_tid
        m = _PREFIX.match(rest)
        if m and (tid is None or rest.startswith("[pid")):
            tid = int(m.group(1))
            rest = rest[m.end():]
        elif tid is None:
            tid = 0  # a log without -f: one process
        m = _TIME.match(rest)
        t = math.nan
        if m:
            t = _time(m.group(1))
            rest = rest[m.end():]
        if rest.startswith(("---", "strace: ")):  # a signal, or strace's own message
            return
        if rest.startswith("+++"):
            if not _EXITED.match(rest):
                return self.bad(n, BAD_EXIT, f"cannot read {rest[:60]!r}")
            if "superseded" in rest:
                return
            self.calls.append(Call(n, self.source, tid, t, "+++"))
            return
        m = _RESUMED.match(rest)
        if m:
            name, tail = m.group(1), m.group(2)
            start = self.pending.pop(tid, None)
            if start is None or start[2] != name:
                # the start is before the log (strace -p) or lost: use what we have
                start = (n, t, name, "")
            return self._finish(start[0], tid, start[1], name, start[3] + tail, n, last)
        m = _CALL.match(rest)
        if not m:
            return self.bad(n, BAD_NOT_STRACE, f"not an strace line: {rest[:60]!r}")
        name, tail = m.group(1), m.group(2)
        if tail.endswith("<unfinished ...>"):
            self.pending[tid] = (n, t, name, tail[: -len("<unfinished ...>")].rstrip() + " ")
            return
        self._finish(n, tid, t, name, tail, n, last)

    def _finish(self, start_line: int, tid: int, t: float, name: str, tail: str, n: int, last: bool):
        wanted = name in MEMORY_CALLS or name in PROCESS_CALLS
        if not wanted and not last:
            return
        m = _RESULT.search(tail)
        if not m:
            if last:
                return self.bad(n, BAD_TRUNCATED, "truncated last line (no result)")
            return self.bad(n, BAD_NO_RESULT, f"{name}: cannot read the call's result")
        if not wanted:
            return
        args = _split_args(tail[: m.start()])
        r = m.group(1)
        failed = m.group(2) is not None or (r.startswith("-") and r != "?")
        ret = None if r == "?" or failed else _ret(r)
        self.calls.append(Call(start_line, self.source, tid, t, name, args, ret, failed))


def ff_pid(path: Path, several: bool) -> int | None:
    """The pid in the name of one of `strace -ff`'s files (FILE.PID): the tid of its lines,
    which carry no pid column. None for a lone file (its lines carry their own, or none)."""
    m = re.search(r"\.(\d+)$", path.name)
    return int(m.group(1)) if (m and several) else None


def parse_files(paths, lenient: bool = False):
    """Calls of one or more strace files, in log order (several files: merged by time)."""
    paths = [Path(p) for p in paths]
    per_file, skipped, first_bad = [], {}, None
    for p in paths:
        source = str(p)
        if not p.exists():
            raise TraceError(source, None, "no such file")
        file_tid = ff_pid(p, len(paths) > 1)
        lp = LineReader(source, file_tid, lenient)
        with open(p, "rb") as f:
            data = f.read()
        if b"\x00" in data[:65536]:
            raise TraceError(source, data[: data.index(b"\x00")].count(b"\n") + 1, "binary data, not an strace log")
        text = data.decode("utf-8", errors="replace")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
            complete = True
        else:
            complete = False
        last = len(lines) - 1 if not complete else -1
        for i, line in enumerate(lines):
            lp.feed(i + 1, line, last=i == last)
        for tid, (line, t, name, _) in lp.pending.items():  # cut off by the log's end
            if name in ("exit", "exit_group"):
                lp.calls.append(Call(line, source, tid, t, "+++"))
        per_file.append(lp.calls)
        for k, v in lp.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
        if lp.first_bad and first_bad is None:
            first_bad = (source, *lp.first_bad)
    if len(per_file) == 1:
        return per_file[0], skipped, first_bad
    if any(math.isnan(c.time) for calls in per_file for c in calls):
        raise TraceError(str(paths[0]), None, "several strace files need timestamps (-t, -tt or -ttt) to merge")
    merged = [c for calls in per_file for c in calls]
    merged.sort(key=lambda c: c.time)  # stable: each file keeps its order for equal times
    return merged, skipped, first_bad


def looks_like_strace(head: str) -> bool:
    """Whether the first lines of a file look like strace output. A last line without its
    newline may be cut (by the read of the head, or a log strace was stopped in): it is
    not judged when lines before it are, so that a short cut log reaches the strace
    reader and its `truncated last line` message."""
    lines = head.splitlines()
    if not head.endswith("\n") and len(lines) > 1:
        lines.pop()
    for line in lines[:20]:
        line = line.strip()
        if not line:
            continue
        m = _PREFIX.match(line)
        rest = line[m.end():] if m else line
        m = _TIME.match(rest)
        rest = rest[m.end():] if m else rest
        if _CALL.match(rest) or _RESUMED.match(rest) or rest.startswith(("+++", "---")):
            continue
        return False
    return bool(head.strip())
