"""Errors raised by the codecs: one root, a few kinds, each saying whether retrying helps.

    ValueError
     └── CodecError                 root of everything this package raises
          ├── FrameError            bytes that do not form a valid frame (garbage, bad
          │    │                    digits, wrong length); line noise, so retrying helps
          │    ├── ChecksumError    checksum / CRC / BCC mismatch; retrying helps
          │    └── BufferOverflow   no frame boundary within the buffer bound; the decoder
          │                         dropped the bytes; retrying helps if the line is clean
          ├── DeviceError           a well-formed reply in which the device reports a
          │                         failure (SICS ``ES``, a PC/SC status word, a reader
          │                         error status); ``retry`` depends on the code
          └── EncodeError           the caller asked to encode something the protocol
                                    cannot carry; retrying never helps

Every error has a ``retry`` attribute (bool) and its message ends with a hint saying
whether retrying the same exchange can help. Transports translate these into their own
hierarchy with ``raise ... from exc``.

MicroPython subset: plain classes, no dataclasses, no typing imports.
"""


class CodecError(ValueError):
    """Root of all codec errors. ``retry`` says whether repeating the exchange can help."""

    retry = True

    def __init__(self, message: str, retry: bool | None = None) -> None:
        if retry is not None:
            self.retry = retry
        self.message = message
        hint = "retrying may help" if self.retry else "retrying will not help"
        super().__init__(message + " (" + hint + ")")


class FrameError(CodecError):
    """The bytes do not form a valid frame of this protocol."""

    retry = True


class ChecksumError(FrameError):
    """The frame's checksum, CRC or BCC does not match its content."""

    retry = True


class BufferOverflow(FrameError):
    """More bytes than the decoder's bound arrived without a frame boundary."""

    retry = True


class DeviceError(CodecError):
    """A valid reply in which the device itself reports an error.

    ``code`` is the device's own code (a string such as ``"ES"`` or an int status).
    """

    retry = False

    def __init__(self, message: str, code: object = None, retry: bool | None = None) -> None:
        self.code = code
        super().__init__(message, retry)


class EncodeError(CodecError):
    """A value cannot be encoded in this protocol (out of range, wrong length ...)."""

    retry = False
