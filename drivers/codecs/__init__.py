"""Sans-IO codecs for the devices at our sites: bytes in, frames out, nothing else.

One module per protocol, each written in the MicroPython-compatible subset (plain
classes, no typing/dataclasses/enum imports, integers for weights and money) so the
host drivers, the simulators and the firmware share the same code::

    sics               Mettler Toledo MT-SICS            scale, ASCII lines
    toledo8217         Toledo 8217                       scale, STX ... CR
    cas_ecr            CAS ECR (ENQ/ACK, DC1, DC2)        price-computing scale, BCC
    toledo_continuous  Toledo continuous output          scale, 18-byte frames
    chafon             Chafon / CF-RU                    UHF reader, Len ... CRC-16
    r2000              R2000 ``A0`` frames               UHF reader, byte-sum check
    pcsc               GET UID and status words          HF cards via PC/SC (messages)
    barcode, gs1       AIM prefix, GS1 AIs, Digital Link  scanners, text lines
    itemcodes, epc     pesticide, seed, drug, GS1 items;  what a scan or a tag identifies
                       SGTIN-96 / SSCC-96 EPCs            (pure functions, no stream)
    modbus_elevator    holding-register map              elevator controller

Support modules: ``errors`` (the hierarchy), ``stream`` (the shared ``feed`` loop and
``BadFrame``), ``lines`` (line splitting), ``quantities`` (``Weight``, ``Money``, exact
decimal parsing).

The shape of every stream protocol:

    encode_*(...) -> bytes         pure; bad arguments raise EncodeError
    decode_*(raw: bytes) -> Frame  pure, one complete frame; garbage raises CodecError
    Decoder().feed(data) -> list   stateful, for a byte stream (see ``stream``)

``Decoder.feed`` never raises for any input: it returns, in stream order, the decoded
frame objects completed by ``data`` and a :class:`~drivers.codecs.stream.BadFrame`
``(error, raw)`` for each corrupt frame, so one bad byte never loses the following good
frame. An empty list means "need more"; a partial frame is kept in a buffer bounded by
``max_buffer`` (4 KiB: beyond it the bytes are dropped and reported as one BadFrame).
Device-reported failures (SICS ``ES``, a reader's error status) are valid frames; their
``raise_for_status()`` raises :class:`DeviceError`. Simulators decode the other direction
with each module's ``CommandDecoder``.

Errors (``errors``): ``CodecError(ValueError)`` is the root, with ``FrameError``
(``ChecksumError``, ``BufferOverflow``), ``DeviceError`` and ``EncodeError``; each has
``retry`` saying whether repeating the exchange can help.
"""

from .errors import (
    BufferOverflow,
    ChecksumError,
    CodecError,
    DeviceError,
    EncodeError,
    FrameError,
)
from .quantities import Money, Weight
from .stream import BadFrame, StreamDecoder

__all__ = [
    "BadFrame",
    "BufferOverflow",
    "ChecksumError",
    "CodecError",
    "DeviceError",
    "EncodeError",
    "FrameError",
    "Money",
    "StreamDecoder",
    "Weight",
]
