"""Memory figures of a test process, shared by the tests that check for
leaks with RSS."""

import os


def rss_kb(pid: int | None = None) -> int:
    """Resident set size of pid (default: this process), in kB."""
    with open(f"/proc/{pid or os.getpid()}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def asan_built(module) -> bool:
    """The extension module is an ASan build (ASan keeps freed memory in
    quarantine, so RSS says nothing about leaks there)."""
    with open(module.__file__, "rb") as f:
        return b"__asan_init" in f.read()
