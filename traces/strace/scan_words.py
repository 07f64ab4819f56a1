"""Byte matching for the compiled strace scanner: character classes, the fixed words
strace writes, and the call names the process model reads, with their codes.

The scanner reads a line by comparing bytes where the reference reader (lines.py) runs
regexes; these are the comparisons, written once. Words and names are tables of bytes
(a 2-d uint8 array and the lengths), which numba freezes into the compiled code as
constants. The name codes are also the call arrays' `name` column, which the compiled
model (compiled_model.py) reads: its order is the order of NAMES.
"""

import numpy as np

from ptpair.traces._jit import inline_scanner, scanner

# name codes: the calls the process model reads (lines.MEMORY_CALLS | PROCESS_CALLS), and
# a thread's end. The model tests ranges of codes (memory calls up to PKEY_MPROTECT, the
# clones FORK..CLONE3): keep the groups together when adding one.
NAMES = ("mmap", "mmap2", "munmap", "brk", "mremap", "madvise", "mprotect", "pkey_mprotect",
         "execve", "execveat", "fork", "vfork", "clone", "clone2", "clone3", "exit", "exit_group")
(MMAP, MMAP2, MUNMAP, BRK, MREMAP, MADVISE, MPROTECT, PKEY_MPROTECT, EXECVE, EXECVEAT,
 FORK, VFORK, CLONE, CLONE2, CLONE3, EXIT, EXIT_GROUP) = range(len(NAMES))
END = len(NAMES)  # `+++ exited with N +++` / `+++ killed by SIG +++`: a thread's end
OTHER = -1  # a call the model does not read


def _table(words):
    """The words as rows of a zero-padded uint8 array, and their lengths."""
    width = max(len(w) for w in words)
    t = np.zeros((len(words), width), dtype=np.uint8)
    n = np.zeros(len(words), dtype=np.int64)
    for i, w in enumerate(words):
        t[i, : len(w)] = np.frombuffer(w.encode(), dtype=np.uint8)
        n[i] = len(w)
    return t, n


NAME_TABLE, NAME_LEN = _table(NAMES)
_WORDS = ("---", "strace: ", "+++ ", "<... ", " resumed>", "<unfinished ...>", "exited with ",
          "killed by SIG", " (core dumped)", "superseded by execve in pid ", " +++", "PROT_NONE",
          "MADV_DONTNEED", "MADV_FREE", "MADV_REMOVE", "NULL", "CLONE_VM", "CLONE_VFORK", "CLONE_THREAD",
          "[pid")
WORD_TABLE, WORD_LEN = _table(_WORDS)
(W_SIGNAL, W_STRACE, W_PLUS, W_RESUMED_OPEN, W_RESUMED, W_UNFINISHED, W_EXITED, W_KILLED, W_CORE,
 W_SUPERSEDED, W_PLUS_END, W_PROT_NONE, W_DONTNEED, W_FREE, W_REMOVE, W_NULL, W_CLONE_VM,
 W_CLONE_VFORK, W_CLONE_THREAD, W_PID) = range(len(_WORDS))


@inline_scanner
def _digit(c):
    return 48 <= c <= 57


@inline_scanner
def _word_char(c):
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or c == 95


@scanner
def _at(buf, i, end, w):
    """Whether WORD_TABLE[w] starts at buf[i] (before `end`)."""
    n = WORD_LEN[w]
    if i + n > end:
        return False
    for j in range(n):
        if buf[i + j] != WORD_TABLE[w, j]:
            return False
    return True


@scanner
def _find(buf, a, b, w):
    """Index of the first WORD_TABLE[w] in buf[a:b], or -1."""
    n = WORD_LEN[w]
    first = WORD_TABLE[w, 0]
    for i in range(a, b - n + 1):
        if buf[i] == first and _at(buf, i, b, w):
            return i
    return -1


@scanner
def _has_word(buf, a, b, w):
    """Whether WORD_TABLE[w] occurs in buf[a:b] as a whole word (regex \\bWORD\\b)."""
    n = WORD_LEN[w]
    i = a
    while True:
        i = _find(buf, i, b, w)
        if i < 0:
            return False
        if (i == a or not _word_char(buf[i - 1])) and (i + n == b or not _word_char(buf[i + n])):
            return True
        i += 1


@scanner
def _name(buf, a, b):
    """Code of the call name buf[a:b]: its index in NAMES, or OTHER."""
    n = b - a
    for k in range(len(NAME_LEN)):
        if NAME_LEN[k] != n:
            continue
        same = True
        for j in range(n):
            if buf[a + j] != NAME_TABLE[k, j]:
                same = False
                break
        if same:
            return k
    return OTHER


@scanner
def _name_end(buf, i, end):
    """End of a name `[a-z_][a-z0-9_]*` starting at buf[i], or i if there is none."""
    if i >= end or not (97 <= buf[i] <= 122 or buf[i] == 95):
        return i
    j = i + 1
    while j < end and (97 <= buf[j] <= 122 or _digit(buf[j]) or buf[j] == 95):
        j += 1
    return j


