#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_protocol: small, realistic server streams.

Run from anywhere: python3 tests/fuzz/gen_corpus.py
The outputs are committed; rerun only when changing the seeds.
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "protocol")


def msg(t, body=b""):
    return t.encode() + struct.pack("!I", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def i16(v):
    return struct.pack("!h", v)


def i32(v):
    return struct.pack("!i", v)


def ready(status):
    return msg("Z", status.encode())


def col(name, type_oid, size, fmt):
    return cstr(name) + struct.pack("!IhIhih", 16384, 1, type_oid, size, -1, fmt)


def datarow(*vals):
    body = i16(len(vals))
    for v in vals:
        body += i32(-1) if v is None else i32(len(v)) + v
    return msg("D", body)


SEEDS = {
    "startup": msg("R", i32(0))
    + msg("S", cstr("client_encoding") + cstr("UTF8"))
    + msg("S", cstr("server_version") + cstr("15.4"))
    + msg("S", cstr("TimeZone") + cstr("UTC"))
    + msg("K", i32(4242) + i32(-559038737))
    + ready("I"),
    "select": msg("T", i16(2) + col("id", 23, 4, 1) + col("name", 25, -1, 0))
    + datarow(b"\0\0\0\1", b"alice")
    + datarow(b"\0\0\0\2", None)
    + msg("C", cstr("SELECT 2"))
    + ready("I"),
    "error": msg(
        "E",
        b"SERROR\0VERROR\0C23505\0Mduplicate key value\0"
        b"DKey (id)=(1) already exists.\0spublic\0tusers\0nusers_pkey\0"
        b"P8\0Fnbtinsert.c\0L664\0R_bt_check_unique\0\0",
    )
    + ready("E"),
    "sasl": msg("R", i32(10) + cstr("SCRAM-SHA-256-PLUS") + cstr("SCRAM-SHA-256") + b"\0")
    + msg("R", i32(11) + b"r=abcdef,s=c2FsdA==,i=4096")
    + msg("R", i32(12) + b"v=c2lnbmF0dXJl")
    + msg("R", i32(0)),
    "md5": msg("R", i32(5) + b"\x01\x02\x03\x04") + msg("R", i32(3)),
    "extended": msg("1")
    + msg("t", i16(2) + struct.pack("!II", 23, 1043))
    + msg("n")
    + msg("2")
    + msg("I")
    + msg("s")
    + msg("N", b"SNOTICE\0VNOTICE\0C00000\0Mhello\0\0")
    + msg("A", i32(77) + cstr("jobs") + cstr('{"id":1}'))
    + msg("3")
    + msg("C", cstr("INSERT 0 3"))
    + ready("T"),
    "copy": msg("H", b"\x01" + i16(2) + i16(1) + i16(1))
    + msg("d", b"PGCOPY\n\xff\r\n\0")
    + msg("c")
    + msg("G", b"\x00" + i16(1) + i16(0))
    + msg("W", b"\x00" + i16(0))
    + msg("C", cstr("COPY 1"))
    + msg("v", i32(0) + i32(1) + cstr("_pq_.foo"))
    + msg("V", i32(4) + b"abcd")
    + ready("I"),
}

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(OUT, name + ".bin"), "wb") as f:
        f.write(data)
