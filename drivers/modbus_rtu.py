"""pymodbus itself, imported only when a Modbus bus is configured (it costs every daemon ~2 MiB).
"""

from __future__ import annotations

from collections.abc import Callable

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU

__all__ = ["AsyncModbusSerialClient", "crc_counting_framer"]


class _CrcCountingFramer(FramerRTU):
    """pymodbus' RTU framer, counting the frames it drops for a bad CRC."""

    def __init__(self, decoder: DecodePDU, on_crc_error: Callable[[], None]) -> None:
        super().__init__(decoder)
        self._on_crc_error = on_crc_error

    def decode(self, data: bytes) -> tuple[int, int, int, bytes]:
        used, dev_id, tid, frame = super().decode(data)
        if used and not frame:  # FramerRTU consumes a whole frame without payload only on CRC
            self._on_crc_error()
        return used, dev_id, tid, frame


def crc_counting_framer(on_crc_error: Callable[[], None]) -> FramerRTU:
    """The RTU framer for a client (server side off), telling `on_crc_error` of each bad CRC."""
    return _CrcCountingFramer(DecodePDU(False), on_crc_error)
