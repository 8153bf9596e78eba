"""A SIA DC-09 sender (the panel's side), written from the standard: CRC, length, AES-CBC.

SIA DC-09-2013 §5.5: a message is `<LF><crc><0LLL>"<id>"<seq><Rrcvr><Lpref>#<acct>[<data>]
_<timestamp><CR>`; the CRC-16 (polynomial 0x8005, reflected, initial 0: "CRC-16/ARC") and the
length cover the text from the first quote up to the CR. Encrypted (`"*SIA-DCS"`), everything
after `[` is AES-CBC with a zero IV over pad characters (none of `|[]`), `|`, the data, `]`
and the timestamp, padded at the front to whole 16-byte blocks, sent as upper-case hex.
pysiaalarm ships no sender, and the receiver is tested against this one, not against itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import string

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC, bit by bit as DC-09 Annex A gives it."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def timestamp(at: dt.datetime | None = None) -> str:
    """`_HH:MM:SS,MM-DD-YYYY` in UTC (§5.5.1.8)."""
    return (at or dt.datetime.now(dt.UTC)).strftime("_%H:%M:%S,%m-%d-%Y")


def frame(body: str) -> bytes:
    """CRC and length in front, LF and CR around."""
    raw = body.encode("ascii")
    return b"\n" + f"{crc16_arc(raw):04X}0{len(raw):03X}".encode() + raw + b"\r"


def message(account: str, data: str, *, seq: int = 1, key: str | None = None,
            at: dt.datetime | None = None, with_time: bool = True) -> bytes:
    """One SIA-DCS event, e.g. data `Nri1/BA01`; encrypted when a key is given."""
    stamp = timestamp(at) if with_time or key else ""
    if key is None:
        return frame(f'"SIA-DCS"{seq:04d}R0L0#{account}[#{account}|{data}]{stamp}')
    clear = f"|{data}]{stamp}"
    pad = "".join(random.choices(string.ascii_letters + string.digits, k=-len(clear) % 16))
    encryptor = Cipher(algorithms.AES(key.encode("ascii")), modes.CBC(bytes(16))).encryptor()
    secret = encryptor.update((pad + clear).encode("ascii")) + encryptor.finalize()
    return frame(f'"*SIA-DCS"{seq:04d}R0L0#{account}[{secret.hex().upper()}')


def answer_kind(reply: bytes, key: str | None = None) -> str:
    """`ACK`, `NAK` or `DUH` from a receiver's answer, after checking its CRC and length."""
    text = reply.strip(b"\n\r").decode("ascii")
    body = text[8:]
    assert int(text[:4], 16) == crc16_arc(body.encode()), f"bad CRC in {text!r}"
    assert int(text[4:8], 16) == len(body), f"bad length in {text!r}"
    kind = body.split('"')[1]
    if kind.startswith("*"):
        assert key is not None
        hexpart = body.split("[", 1)[1]
        decryptor = Cipher(algorithms.AES(key.encode("ascii")), modes.CBC(bytes(16))).decryptor()
        clear = (decryptor.update(bytes.fromhex(hexpart)) + decryptor.finalize()).decode()
        assert "]_" in clear, f"no timestamp in the encrypted answer {clear!r}"
        kind = kind[1:]
    return kind


class Panel:
    """A panel's connection to the receiver: send a message, read the answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> Panel:
        """Connect to 127.0.0.1:port."""
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, data: bytes, timeout_s: float = 5.0) -> bytes:
        """Send one message and wait for the answer (empty if none comes within 0.5 s)."""
        self.writer.write(data)
        await self.writer.drain()
        try:
            return await asyncio.wait_for(self.reader.readuntil(b"\r"), timeout_s)
        except TimeoutError:
            return b""

    async def close(self) -> None:
        """Hang up."""
        self.writer.close()
        await self.writer.wait_closed()
