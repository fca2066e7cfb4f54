"""Frames: a 4-byte little-endian length, then that many bytes (one MsgPack
map). Sans-I/O: bytes in, whole frame bodies out."""

from __future__ import annotations

import struct

from .errors import ProtocolError

__all__ = ["encode_frame", "FrameDecoder", "HEADER", "DEFAULT_MAX_RESPONSE"]

HEADER = struct.Struct("<I")
#: the largest response frame the client accepts (a result is one frame
#: unless streamed)
DEFAULT_MAX_RESPONSE = 1 << 30


def encode_frame(body: bytes) -> bytes:
    if not body:
        raise ValueError("a frame body must not be empty")
    if len(body) > 0xFFFFFFFF:
        raise ValueError(f"a frame body of {len(body)} bytes exceeds the 4-byte length")
    return HEADER.pack(len(body)) + body


class FrameDecoder:
    """Feed bytes, get complete frame bodies. Raises ProtocolError on a zero
    or oversized length (the stream is then out of sync for good)."""

    def __init__(self, max_frame: int = DEFAULT_MAX_RESPONSE) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._need: int | None = None

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            if self._need is None:
                if len(self._buf) < 4:
                    return out
                (n,) = HEADER.unpack_from(self._buf, 0)
                if n == 0:
                    raise ProtocolError("the worker sent a frame of length 0")
                if n > self.max_frame:
                    raise ProtocolError(
                        f"the worker sent a frame of {n} bytes, above the client's "
                        f"limit of {self.max_frame} (max_response_bytes)"
                    )
                del self._buf[:4]
                self._need = n
            if len(self._buf) < self._need:
                return out
            out.append(bytes(self._buf[: self._need]))
            del self._buf[: self._need]
            self._need = None

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)
