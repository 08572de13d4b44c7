"""GS1 Application Identifiers: element strings (FNC1 as GS) and Digital Link URIs.

Supported AIs (:data:`AIS`; others raise, since their length cannot be known):

=====  ==================  ========  =================================================
AI     meaning             format    check
=====  ==================  ========  =================================================
00     SSCC                N18       GS1 mod-10 check digit
01     GTIN                N14       GS1 mod-10 check digit
02     GTIN of contents    N14       GS1 mod-10 check digit
10     batch / lot         X..20
11     production date     N6        YYMMDD, month 01-12, day 00-31 (00 = unspecified)
13     packaging date      N6        date
15     best before         N6        date
16     sell by             N6        date
17     expiry              N6        date
20     variant             N2
21     serial              X..20
22     consumer variant    X..20
30     variable count      N..8
37     count of items      N..8
3100-  net weight kg       N6        last AI digit = decimals: 3103 000195 = 0.195 kg
3105
400    customer PO         X..30
414    location GLN        N13       GS1 mod-10 check digit
254    GLN extension       X..20
=====  ==================  ========  =================================================

The check digit is the wire contract's (:mod:`wire.checkdigit`), the one our own codes carry.

Element strings: AIs whose first two digits are in GS1's predefined-length table
(:data:`PREDEFINED`) need no separator; every other field ends with GS (0x1D, FNC1) or
at the end of the string. The parser also accepts a GS after a predefined-length field.

Digital Link: ``https://host/[prefix/]01/{gtin}[/22/{cpv}][/10/{lot}][/21/{serial}]``
then ``?ai=value&...`` for the other AIs; values are percent-encoded, a GTIN-8/12/13 in
the path is padded to 14 digits, non-AI query parameters are ignored.
"""

from wire.checkdigit import check_digit, verify_check_digit

from .errors import EncodeError, FrameError
from .quantities import Weight, is_digits

GS = "\x1d"

# AI -> (min length, max length, numeric, kind) with kind "check", "date" or ""
AIS = {
    "00": (18, 18, True, "check"),
    "01": (14, 14, True, "check"),
    "02": (14, 14, True, "check"),
    "10": (1, 20, False, ""),
    "11": (6, 6, True, "date"),
    "13": (6, 6, True, "date"),
    "15": (6, 6, True, "date"),
    "16": (6, 6, True, "date"),
    "17": (6, 6, True, "date"),
    "20": (2, 2, True, ""),
    "21": (1, 20, False, ""),
    "22": (1, 20, False, ""),
    "30": (1, 8, True, ""),
    "37": (1, 8, True, ""),
    "254": (1, 20, False, ""),
    "400": (1, 30, False, ""),
    "414": (13, 13, True, "check"),
}
for _n in range(6):
    AIS["310" + str(_n)] = (6, 6, True, "")

PREDEFINED = (
    "00", "01", "02", "03", "04", "11", "12", "13", "14", "15", "16", "17", "18", "19",
    "20", "31", "32", "33", "34", "35", "36", "41",
)  # fmt: skip
# GS1 AI encodable character set 82
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
# Digital Link: primary key -> qualifiers allowed in the path, in order
DL_PATH = {"01": ("22", "10", "21"), "00": (), "414": ("254",)}
DL_PRIMARY = ("01", "00", "414")
UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
HEX = "0123456789ABCDEF"


def utf8(raw: bytes) -> str | None:
    """``raw`` decoded as UTF-8, or None (no exception, so no chaining on MicroPython)."""
    try:
        return raw.decode()
    except UnicodeError:
        return None


def value_problem(ai: str, value: str) -> str:
    """Why ``value`` is invalid for ``ai``, or "" when it is valid."""
    spec = AIS.get(ai)
    if spec is None:
        return f"unsupported GS1 AI ({ai})"
    low, high, numeric, kind = spec
    if not low <= len(value) <= high:
        size = str(low) if low == high else f"{low}-{high}"
        return f"AI ({ai}) needs {size} characters, got {len(value)}: {value!r}"
    if numeric and not is_digits(value):
        return f"AI ({ai}) must be digits: {value!r}"
    if not numeric:
        for ch in value:
            if ch not in CSET82:
                return f"AI ({ai}) character {ch!r} is outside GS1 set 82"
    if kind == "check" and not verify_check_digit(value):
        return f"AI ({ai}) {value}: check digit should be {check_digit(value[:-1])}"
    if kind == "date":
        month, day = int(value[2:4]), int(value[4:6])
        if not 1 <= month <= 12 or day > 31:
            return f"AI ({ai}) {value} is not a YYMMDD date"
    return ""


def check_value(ai: str, value: str) -> None:
    """Raise FrameError unless ``value`` is valid for ``ai``."""
    problem = value_problem(ai, value)
    if problem:
        raise FrameError(problem)


def _check_encodable(ais: dict[str, str]) -> None:
    for ai in ais:
        problem = value_problem(ai, ais[ai])
        if problem:
            raise EncodeError(problem)


def _ai_at(text: str, pos: int) -> str:
    for n in (2, 3, 4):
        ai = text[pos : pos + n]
        if len(ai) == n and ai in AIS:
            return ai
    raise FrameError(f"unknown or unsupported GS1 AI at {text[pos : pos + 4]!r}")


def _add(ais: dict[str, str], ai: str, value: str) -> None:
    check_value(ai, value)
    if ais.get(ai, value) != value:
        raise FrameError(f"AI ({ai}) appears twice with different values")
    ais[ai] = value


def parse_element_string(text: str) -> dict[str, str]:
    """``"0109506000134352" + "10ABC" + GS + "3103000195"`` -> ``{"01": ..., ...}``."""
    if text[:1] == GS:
        text = text[1:]
    if not text:
        raise FrameError("empty GS1 element string")
    ais: dict[str, str] = {}
    pos = 0
    end = len(text)
    while pos < end:
        ai = _ai_at(text, pos)
        pos += len(ai)
        low, high, _, _ = AIS[ai]
        if low == high:
            value = text[pos : pos + low]
            pos += low
            if text[pos : pos + 1] == GS:
                pos += 1
        else:
            stop = text.find(GS, pos)
            if stop < 0:
                stop = end
            value = text[pos:stop]
            pos = stop + 1
        _add(ais, ai, value)
    return ais


def encode_element_string(ais: dict[str, str]) -> str:
    """The shortest element string: predefined-length fields first, GS only where needed."""
    if not ais:
        raise EncodeError("no AIs to encode")
    fixed: list[str] = []
    other: list[str] = []
    _check_encodable(ais)
    for ai in sorted(ais):
        (fixed if ai[:2] in PREDEFINED else other).append(ai + ais[ai])
    return "".join(fixed) + GS.join(other)


def net_weight(ais: dict[str, str]) -> Weight | None:
    """AI 310n as ``Weight(value, n, "kg")``: 3103 ``000195`` -> ``Weight(195, 3, "kg")``."""
    for n in range(6):
        value = ais.get("310" + str(n))
        if value is not None:
            return Weight(int(value), n, "kg")
    return None


def expand_date(yymmdd: str, this_year: int) -> tuple[int, int, int]:
    """GS1 century rule: the year is taken within -49..+50 years of ``this_year``."""
    yy = int(yymmdd[:2])
    year = this_year - this_year % 100 + yy
    if year - this_year > 50:
        year -= 100
    elif this_year - year > 49:
        year += 100
    return year, int(yymmdd[2:4]), int(yymmdd[4:6])


# -- Digital Link ---------------------------------------------------------------------------


def percent_encode(value: str) -> str:
    out = []
    for b in value.encode():
        ch = chr(b)
        out.append(ch if ch in UNRESERVED else "%" + HEX[b >> 4] + HEX[b & 15])
    return "".join(out)


def percent_decode(text: str) -> str:
    if "%" not in text:
        return text
    raw = bytearray()
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "%":
            pair = text[i + 1 : i + 3].upper()
            if len(pair) != 2 or pair[0] not in HEX or pair[1] not in HEX:
                raise FrameError(f"bad percent escape in {text!r}")
            raw.append(HEX.index(pair[0]) * 16 + HEX.index(pair[1]))
            i += 3
        else:
            raw.extend(ch.encode())
            i += 1
    decoded = utf8(bytes(raw))
    if decoded is None:
        raise FrameError(f"percent escapes in {text!r} are not UTF-8")
    return decoded


def split_url(url: str) -> tuple[str, list[str], str]:
    """``(host, path segments, query)`` of an http(s) URL, fragment dropped; else FrameError."""
    if url.startswith("https://"):
        rest = url[8:]
    elif url.startswith("http://"):
        rest = url[7:]
    else:
        raise FrameError(f"not an http(s) URI: {url!r}")
    rest = rest.partition("#")[0]
    rest, _, query = rest.partition("?")
    host, _, path = rest.partition("/")
    if not host:
        raise FrameError(f"no host in {url!r}")
    return host, path.split("/"), query


def find_digital_link(url: str) -> dict[str, str] | None:
    """AIs of a GS1 Digital Link URI; None if the URI has no primary key in its path.

    Raises FrameError when it has one but a value is invalid (bad check digit ...).
    """
    _, segments, query = split_url(url)
    start = -1
    for i in range(len(segments) - 1):
        if segments[i] in DL_PATH:
            start = i
            break
    if start < 0:
        return None
    primary = segments[start]
    pairs = segments[start:]
    if len(pairs) % 2 or "" in pairs:
        raise FrameError(f"Digital Link path must be /key/value pairs: {url!r}")
    ais: dict[str, str] = {}
    allowed = DL_PATH[primary]
    last = -1
    for i in range(0, len(pairs), 2):
        key, value = pairs[i], percent_decode(pairs[i + 1])
        if i:
            if key not in allowed or allowed.index(key) <= last:
                raise FrameError(f"({key}) cannot qualify ({primary}) here in {url!r}")
            last = allowed.index(key)
        if key == "01" and len(value) in (8, 12, 13):
            value = "0" * (14 - len(value)) + value
        _add(ais, key, value)
    if query:
        for item in query.split("&"):
            key, eq, value = item.partition("=")
            if eq and is_digits(key) and key in AIS:
                _add(ais, key, percent_decode(value))
    return ais


def parse_digital_link(url: str) -> dict[str, str]:
    """Like :func:`find_digital_link` but FrameError when there is no primary key."""
    ais = find_digital_link(url)
    if ais is None:
        raise FrameError(f"no GS1 primary key (01, 00, 414) in the path of {url!r}")
    return ais


def build_digital_link(ais: dict[str, str], base: str = "https://id.gs1.org") -> str:
    """A Digital Link URI for ``ais``: key and qualifiers in the path, the rest in the query."""
    primary = ""
    for key in DL_PRIMARY:
        if key in ais:
            primary = key
            break
    if not primary:
        raise EncodeError("a Digital Link needs AI (01), (00) or (414)")
    _check_encodable(ais)
    path = [primary, ais[primary]]
    for key in DL_PATH[primary]:
        if key in ais:
            path += [key, percent_encode(ais[key])]
    query = [
        key + "=" + percent_encode(ais[key])
        for key in sorted(ais)
        if key != primary and key not in DL_PATH[primary]
    ]
    url = base.rstrip("/") + "/" + "/".join(path)
    return url + "?" + "&".join(query) if query else url
