"""Errors of the PC/SC reader transport (:mod:`drivers.transports.pcsc_reader`).

They hang under the transports' common root :class:`~drivers.transports.errors.DriverError`
(``except DriverError as exc: if exc.retry: ...`` works for every device), and where the
meaning is the same also under its generic kinds::

    DriverError                        drivers.transports.errors
     └── PcscError                     root of these; ``retry`` says whether trying again helps
          ├── ServiceUnavailable       pcscd is not running, stopped or restarted under us
          │                            (also a PortUnavailable; retrying helps once it is back)
          ├── ReaderUnavailable        no reader of that name (unplugged, driver not loaded;
          │                            also a PortUnavailable)
          ├── NoCard                   no card on the reader, or it left during the exchange
          ├── ReaderBusy               another application holds the card exclusively
          ├── CardError                the card / reader answered with an error status word:
          │                            ``sw`` (= ``code``), ``retry`` from the status table
          │                            (also a DeviceFault)
          └── ProtocolError            an answer that is not a valid response at all

pyscard reports failures as PC/SC result codes (``hresult``) or its own exceptions;
:func:`from_hresult` maps a code to the class above. The transport raises these with
``raise ... from exc`` so the pyscard exception (or the codec's error) stays attached.
"""

from __future__ import annotations

from smartcard import scard

from .errors import DeviceFault, DriverError, PortUnavailable


class PcscError(DriverError):
    """Root of the PC/SC transport's errors; ``hresult`` is the PC/SC code when there is one."""

    retry = True

    def __init__(self, message: str, retry: bool | None = None, hresult: int | None = None):
        self.hresult = hresult
        super().__init__(message, retry=retry)


class ServiceUnavailable(PcscError, PortUnavailable):
    """pcscd cannot be reached (not running, stopped, or restarted: the context is stale)."""


class ReaderUnavailable(PcscError, PortUnavailable):
    """No reader with that name is known to pcscd."""


class NoCard(PcscError):
    """There is no card on the reader (or it was removed / reset during the exchange)."""


class ReaderBusy(PcscError):
    """The card is held exclusively by another application."""


class CardError(PcscError, DeviceFault):
    """The card or reader answered with an error status word (``sw``, also ``code``)."""

    retry = False

    def __init__(self, message: str, sw: int, retry: bool | None = None) -> None:
        super().__init__(message, retry=retry)
        self.sw = sw
        self.code = sw


class ProtocolError(PcscError):
    """The answer is not a valid response (too short, UID of impossible length ...)."""


_SERVICE = {
    scard.SCARD_E_NO_SERVICE,
    scard.SCARD_E_SERVICE_STOPPED,
    scard.SCARD_E_INVALID_HANDLE,
    scard.SCARD_F_COMM_ERROR,
    scard.SCARD_E_NO_MEMORY,
}
_READER = {
    scard.SCARD_E_NO_READERS_AVAILABLE,
    scard.SCARD_E_UNKNOWN_READER,
    scard.SCARD_E_READER_UNAVAILABLE,
}
_NO_CARD = {
    scard.SCARD_E_NO_SMARTCARD,
    scard.SCARD_W_REMOVED_CARD,
    scard.SCARD_W_RESET_CARD,
    scard.SCARD_W_UNPOWERED_CARD,
    scard.SCARD_W_UNRESPONSIVE_CARD,
    scard.SCARD_E_NOT_TRANSACTED,
}
_NEVER = {
    scard.SCARD_E_INVALID_PARAMETER,
    scard.SCARD_E_INVALID_VALUE,
    scard.SCARD_E_INSUFFICIENT_BUFFER,
    scard.SCARD_E_UNSUPPORTED_FEATURE,
    scard.SCARD_E_CARD_UNSUPPORTED,
    scard.SCARD_E_READER_UNSUPPORTED,
    scard.SCARD_E_PROTO_MISMATCH,
    scard.SCARD_W_UNSUPPORTED_CARD,
}


def hresult_text(hresult: int) -> str:
    code = hresult & 0xFFFFFFFF
    return f"{scard.SCardGetErrorMessage(hresult).rstrip('.')} (0x{code:08X})"


def from_hresult(hresult: int, what: str) -> PcscError:
    """The error for a failed PC/SC call; ``what`` says what was being done."""
    message = f"{what}: {hresult_text(hresult)}"
    if hresult in _SERVICE:
        return ServiceUnavailable(message, hresult=hresult)
    if hresult in _READER:
        return ReaderUnavailable(message, hresult=hresult)
    if hresult in _NO_CARD:
        return NoCard(message, hresult=hresult)
    if hresult == scard.SCARD_E_SHARING_VIOLATION:
        return ReaderBusy(message, hresult=hresult)
    return PcscError(message, retry=hresult not in _NEVER, hresult=hresult)
