"""UHF tag EPCs (as the Chafon and R2000 codecs return them): SGTIN-96 and SSCC-96.

GS1 EPC Tag Data Standard binary encodings, 96 bits, most significant bit first:

==========  ======  ======  =========  ===============================  ==================
scheme      header  filter  partition  fields                           then
==========  ======  ======  =========  ===============================  ==================
SGTIN-96    0x30    3 bits  3 bits     company prefix + item reference  serial, 38 bits
                                       (44 bits together)               (an integer)
SSCC-96     0x31    3 bits  3 bits     company prefix + serial          24 bits, zero
                                       reference (58 bits together)
==========  ======  ======  =========  ===============================  ==================

The partition ``p`` (0-6) says how the bits and digits split: the company prefix has
``12 - p`` digits; the SGTIN item reference ``1 + p`` digits (its first digit is the GTIN's
indicator digit), the SSCC serial reference ``5 + p`` digits (its first digit is the
SSCC's extension digit). GTIN = indicator + company prefix + rest of item reference +
check digit; SSCC likewise with the extension digit. A field whose value has more digits
than its partition allows is an invalid tag.

Filter values (what the tag is on), SGTIN: 1 point-of-sale unit, 2 full case for
transport, 4 inner pack, 6 unit load, 7 unit inside a trade item, 0/3/5 other or
reserved. An SSCC's filter is returned but not interpreted (an SSCC is a logistic unit
whatever its filter).

Other headers are not decoded: :func:`decode_epc` returns ``None`` for them and the caller
keeps the EPC hex itself as the identifier.
"""

from wire.checkdigit import with_check_digit

from .errors import EncodeError, FrameError

SGTIN96 = 0x30
SSCC96 = 0x31
# partition -> bits of the item reference (SGTIN, 44 - company prefix bits) and of the
# serial reference (SSCC, 58 - company prefix bits); prefix bits 40 37 34 30 27 24 20
SGTIN_REF_BITS = (4, 7, 10, 14, 17, 20, 24)
SSCC_REF_BITS = (18, 21, 24, 28, 31, 34, 38)
SERIAL_BITS = 38
SGTIN_FILTERS = {
    0: "other",
    1: "pos unit",
    2: "case",
    3: "reserved",
    4: "inner pack",
    5: "reserved",
    6: "unit load",
    7: "unit inside item",
}
HEXDIGITS = "0123456789ABCDEF"


def epc_hex(epc: object) -> str:
    """The EPC as upper-case hex: from bytes (a reader's EPC) or a hex string.

    A hex string may be lower case and may have spaces; it must be whole 16-bit words
    (EPC memory is word-addressed), 1 to 31 words.
    """
    if isinstance(epc, (bytes, bytearray)):
        if not epc or len(epc) % 2 or len(epc) > 62:
            raise FrameError(f"EPC of {len(epc)} bytes is not 1-31 whole 16-bit words", retry=False)
        text = "".join(HEXDIGITS[b >> 4] + HEXDIGITS[b & 15] for b in epc)
    elif isinstance(epc, str):
        text = epc.replace(" ", "").upper()
        for ch in text:
            if ch not in HEXDIGITS:
                raise FrameError(f"EPC {epc[:80]!r} is not hex", retry=False)
    else:
        raise FrameError(f"an EPC is bytes or a hex string, not {type(epc).__name__}", retry=False)
    if not text or len(text) % 4 or len(text) > 124:
        raise FrameError(f"EPC {text[:80]!r} is not 1-31 whole 16-bit words", retry=False)
    return text


def _digits(value: int, width: int, what: str) -> str:
    text = str(value)
    if len(text) > width:
        raise FrameError(f"{what} {value} does not fit {width} digits", retry=False)
    return "0" * (width - len(text)) + text


def decode_epc(epc: object) -> dict[str, object] | None:
    """SGTIN-96 / SSCC-96 fields of ``epc`` (bytes or hex), or None for another header.

    SGTIN-96 -> ``{"scheme": "sgtin-96", "gtin", "serial", "filter", "company_prefix"}``;
    SSCC-96 -> ``{"scheme": "sscc-96", "sscc", "filter", "company_prefix"}``. An invalid
    SGTIN/SSCC (partition 7, a field too large for its digits) raises FrameError.
    """
    text = epc_hex(epc)
    if len(text) != 24 or text[:2] not in ("30", "31"):
        return None
    value = int(text, 16)
    header = value >> 88
    filt = (value >> 85) & 7
    partition = (value >> 82) & 7
    if partition > 6:
        raise FrameError(f"EPC {text}: partition {partition} is invalid", retry=False)
    cp_digits = 12 - partition
    if header == SGTIN96:
        ref_bits = SGTIN_REF_BITS[partition]
        rest = (value >> SERIAL_BITS) & ((1 << 44) - 1)
        prefix = _digits(rest >> ref_bits, cp_digits, "company prefix")
        ref = _digits(rest & ((1 << ref_bits) - 1), 1 + partition, "item reference")
        return {
            "scheme": "sgtin-96",
            "gtin": with_check_digit(ref[0] + prefix + ref[1:]),
            "serial": str(value & ((1 << SERIAL_BITS) - 1)),
            "filter": filt,
            "company_prefix": prefix,
        }
    ref_bits = SSCC_REF_BITS[partition]
    if value & 0xFFFFFF:
        raise FrameError(f"EPC {text}: SSCC-96 unallocated bits are not zero", retry=False)
    rest = (value >> 24) & ((1 << 58) - 1)
    prefix = _digits(rest >> ref_bits, cp_digits, "company prefix")
    ref = _digits(rest & ((1 << ref_bits) - 1), 5 + partition, "serial reference")
    return {
        "scheme": "sscc-96",
        "sscc": with_check_digit(ref[0] + prefix + ref[1:]),
        "filter": filt,
        "company_prefix": prefix,
    }


def _check_prefix(prefix_len: int, code: str, size: int, what: str) -> None:
    if len(code) != size or not all(ch in HEXDIGITS[:10] for ch in code):
        raise EncodeError(f"{what} must be {size} digits: {code!r}")
    if not 6 <= prefix_len <= 12:
        raise EncodeError(f"company prefix length must be 6-12, got {prefix_len}")


def _hex96(value: int) -> str:
    out = ""
    for shift in range(92, -4, -4):
        out += HEXDIGITS[(value >> shift) & 15]
    return out


def encode_sgtin96(gtin: str, serial: int, prefix_len: int, filt: int = 1) -> str:
    """SGTIN-96 EPC hex for a GTIN-14 (check digit included) and an integer serial."""
    _check_prefix(prefix_len, gtin, 14, "GTIN")
    if not 0 <= serial < 1 << SERIAL_BITS or not 0 <= filt <= 7:
        raise EncodeError(f"serial {serial} or filter {filt} out of range for SGTIN-96")
    if with_check_digit(gtin[:13]) != gtin:
        raise EncodeError(f"GTIN {gtin} has a wrong check digit")
    partition = 12 - prefix_len
    ref_bits = SGTIN_REF_BITS[partition]
    prefix = int(gtin[1 : 1 + prefix_len])
    ref = int(gtin[0] + gtin[1 + prefix_len : 13])
    value = (SGTIN96 << 88) | (filt << 85) | (partition << 82)
    value |= ((prefix << ref_bits) | ref) << SERIAL_BITS
    return _hex96(value | serial)


def encode_sscc96(sscc: str, prefix_len: int, filt: int = 0) -> str:
    """SSCC-96 EPC hex for an 18-digit SSCC (check digit included)."""
    _check_prefix(prefix_len, sscc, 18, "SSCC")
    if with_check_digit(sscc[:17]) != sscc or not 0 <= filt <= 7:
        raise EncodeError(f"SSCC {sscc} has a wrong check digit or filter {filt} is out of range")
    partition = 12 - prefix_len
    ref_bits = SSCC_REF_BITS[partition]
    prefix = int(sscc[1 : 1 + prefix_len])
    ref = int(sscc[0] + sscc[1 + prefix_len : 17])
    value = (SSCC96 << 88) | (filt << 85) | (partition << 82)
    value |= ((prefix << ref_bits) | ref) << 24
    return _hex96(value)
