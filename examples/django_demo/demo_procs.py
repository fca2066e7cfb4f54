"""Child processes of the demo, its tests and the benchmark: wait until one
is ready, stop one politely, find a free port."""
import signal
import socket
import subprocess
import time


def wait_until(check, proc: subprocess.Popen, what: str, seconds: float = 30.0):
    """check() until it stops raising OSError; fails if proc exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            return check()
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up in {seconds:.0f} s")


def unix_listening(path: str) -> None:
    """Raises OSError unless something accepts connections on path."""
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
    finally:
        s.close()


def stop(proc: subprocess.Popen, seconds: float = 15.0) -> int:
    """SIGTERM, then SIGKILL after `seconds`; the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
