"""Generate ``config/vectors/wire.json``, the golden vectors of the wire contract.

Run ``python -m tests.wire.make_vectors`` from the repository root to regenerate;
``tests/wire/test_vectors.py`` fails when the file and this generator disagree.

Each positive case: ``name``, ``key_hex`` (the device key), ``record`` (an unsigned record),
``canonical`` (its canonical encoding as a string; encode as UTF-8 for the bytes) and ``mac``
(HMAC-SHA256 of those bytes under the key, lower-case hex). Each negative case holds
``record_json`` (JSON text, so that the file itself parses everywhere, also on MicroPython
whose ``json`` may not take a lone surrogate escape or should not silently take a float) and
``expect_error``, a word the canonical encoder's error message contains.

The file is written with raw UTF-8 (``ensure_ascii=False``): no surrogate-pair escapes, which
not every JSON parser joins.
"""

from __future__ import annotations

import json
from pathlib import Path

from wire.canonical import canonical_pure
from wire.mac import hexlify, hmac_sha256

VECTORS_PATH = Path(__file__).resolve().parents[2] / "config" / "vectors" / "wire.json"

MAX_SAFE = 2**53 - 1


def _nest(depth: int) -> object:
    """A value nested ``depth`` containers deep (lists and objects alternating)."""
    value: object = "底"
    for i in range(depth):
        value = [value] if i % 2 == 0 else {"k": value}
    return value


def _envelope(kind: str, body: dict[str, object], **over: object) -> dict[str, object]:
    rec: dict[str, object] = {
        "v": 2,
        "dev": "CYL-R-0001",
        "seq": 1,
        "boot": 1,
        "kind": kind,
        "ts": 1763900000000,
        "tq": "ntp",
        "body": body,
    }
    rec.update(over)
    return rec


def _positive() -> list[tuple[str, bytes, dict[str, object]]]:
    key32 = bytes(range(32))
    return [
        (
            "elevator_status_minimal",
            key32,
            _envelope(
                "elevator.status",
                {
                    "reg": "31103301062015000123",
                    "dir": "stopped",
                    "floor": -1,
                    "door": "open",
                    "door_zone": True,
                    "people": False,
                    "inspection": False,
                    "maintenance": False,
                    "faults": [],
                },
                dev="ELV-B-0007",
                seq=42,
                boot=3,
                tq="rtc",
            ),
        ),
        (
            "market_settlement_chinese",
            bytes.fromhex("8f3a1c5e9b7d2f4a6c8e0b1d3f5a7c9e2b4d6f8a0c1e3f5b7d9a2c4e6f8b0d1f"),
            _envelope(
                "market.settlement",
                {
                    "market": "M330106012",
                    "terminal": "M330106012-017",
                    "scale_sw": "ACS-15RT V3.0.7",
                    "tran_id": "33010625112317000424",
                    "trace_id": "83301061700000004247",
                    "seller": "T3301060012",
                    "seller_card": "04A2B9C1",
                    "buyer": "B33010600187",
                    "buyer_card": "04D37A52C18F90",
                    "pay": "wechat",
                    "lines": [
                        {
                            "batch_id": "33010625112300000126",
                            "goods_code": "10010004",
                            "goods_name": "五花肉",
                            "mode": "weighed",
                            "weight_g": 1255,
                            "price_fen_per_kg": 3480,
                            "amount_fen": 4367,
                        },
                        {
                            "batch_id": "33010625112300000933",
                            "goods_code": "20040001",
                            "goods_name": "豆腐",
                            "mode": "counted",
                            "pieces": 3,
                            "price_fen_per_piece": 250,
                            "amount_fen": 750,
                        },
                    ],
                    "total_fen": 5117,
                },
                dev="MKT-S-0017",
                seq=424,
                boot=12,
            ),
        ),
        (
            "cylinder_fill",
            key32,
            _envelope(
                "cylinder.fill",
                {
                    "cyl": "3301062401210042",
                    "tag": "E2801160200074CF6A1B09C3",
                    "station": "CZ330106012",
                    "operator": "OP06017",
                    "medium": "lpg",
                    "target_net_g": 14500,
                    "actual_net_g": 14470,
                    "start_ts": 1763899880000,
                    "end_ts": 1763899975000,
                    "pre": {"appearance_ok": True, "residual_kpa": 120, "tare_g": 15320},
                    "post": {"reweigh_g": 29790, "leak_ok": True, "checker": "OP06003"},
                    "scale": "CZ330106012-S01",
                },
                seq=9007,
            ),
        ),
        (
            "control_characters",
            key32,
            _envelope(
                "elevator.fault",
                {
                    "reg": "31103301062015000123",
                    "fault": "alarm_button",
                    "state": "raised",
                    "floor": 7,
                    "detail": "nul\x00 soh\x01 bs\b tab\t lf\n vt\x0b ff\f cr\r us\x1f"
                    ' quote" backslash\\ slash/ del\x7f nel\x85 ls\u2028 ps\u2029 bom\ufeff',
                },
                dev="ELV-B-0007",
                seq=7,
                tq="unsynced",
            ),
        ),
        (
            "key_order_by_code_point",
            key32,
            _envelope(
                "elevator.status",
                {
                    # Code-point order, not UTF-16 order: U+FF61 sorts before U+1F600.
                    "\U0001f600": 1,
                    "\uff61": 2,
                    "é": 3,
                    "z": 4,
                    "_": 5,
                    "Z": 6,
                    "a": 7,
                    "10": 8,
                    "9": 9,
                    "": 10,
                    "\n": 11,
                    'q"uote': 12,
                    "back\\slash": 13,
                    "中": 14,
                    "aa": 15,
                    "a\x00": 16,
                },
            ),
        ),
        (
            "ints_and_empties",
            key32,
            _envelope(
                "market.entry",
                {
                    "max_safe": MAX_SAFE,
                    "min_safe": -MAX_SAFE,
                    "zero": 0,
                    "minus_one": -1,
                    "empty_string": "",
                    "empty_list": [],
                    "empty_object": {},
                    "null": None,
                    "true": True,
                    "false": False,
                    "list_of_empties": [[], {}, "", 0, None, [[]]],
                },
                seq=MAX_SAFE,
                boot=MAX_SAFE,
                ts=MAX_SAFE,
            ),
        ),
        (
            "non_bmp_and_cjk_values",
            key32,
            _envelope(
                "market.entry",
                {
                    "market": "M330106012",
                    "trader": "T3301060012",
                    "batch_id": "33010625112300000126",
                    "cert_no": "3301234567",
                    "origin": "浙江省嘉兴市 定点屠宰厂 A3307 😀𠀋𝄞",
                    "goods_code": "10010001",
                    "goods_name": "白条猪",
                    "quantity_g": 350000,
                },
                dev="MKT-G-0001",
                seq=126,
            ),
        ),
        (
            # a retail entry naming the wholesale receipt it was bought on (卡单同行)
            "market_entry_with_source",
            key32,
            _envelope(
                "market.entry",
                {
                    "market": "M330106012",
                    "trader": "T3301060012",
                    "card": "04A2B9C1",
                    "batch_id": "33061225112300000010",
                    "cert_no": "3301234567",
                    "origin": "浙江省嘉兴市 定点屠宰厂 A3307（经M330100001批发）",
                    "goods_code": "10010001",
                    "goods_name": "白条猪",
                    "quantity_g": 88000,
                    "source": {"trace_id": "83301012511230100010", "via": "qr"},
                },
                dev="MKT-G-0012",
                seq=10,
            ),
        ),
        (
            "nested_to_max_depth",
            key32,
            # record (0) -> body (1) -> "n" (2) -> 14 more containers -> a string at depth 16.
            _envelope("elevator.status", {"n": _nest(14), "m": {"x": [1, [2, [3]]]}}),
        ),
        (
            "long_key_is_hashed",
            bytes(range(100)),
            _envelope("cylinder.check", {"cyl": "3301062401210042", "reasons": []}),
        ),
        (
            "empty_key",
            b"",
            _envelope("cylinder.check", {"cyl": "3301062401210042", "reasons": ["scrapped"]}),
        ),
        (
            "goods_out_controlled_chemical",
            key32,
            # a sale of a highly toxic chemical: outer drum (SSCC) with its inner units, the
            # buyer's and handler's personal data, licence and use (docs/warehouse.md)
            _envelope(
                "goods.out",
                {
                    "site": "CHEM-01",
                    "operator": "OP-02",
                    "product_class": "chemical_toxic",
                    "product": {"name": "氰化钠", "code": "UN1689"},
                    "items": [
                        {
                            "scheme": "gs1",
                            "id": "https://id.gs1.org/00/169312345678901238",
                            "level": "case",
                            "inner": [
                                "https://id.gs1.org/01/06930000000013/21/A%2F1",
                                "https://id.gs1.org/01/06930000000013/21/A%2F2",
                            ],
                        }
                    ],
                    "quantity": 100000,
                    "unit": "g",
                    "lot": "L20251101",
                    "party": "宁波港华电镀厂",
                    "party_address": "宁波市北仑区新碶街道8号",
                    "handler": "李敏",
                    "handler_id": "330206197512124321",
                    "licence": "JD-330200-2025-0042",
                    "use": "电镀",
                    "doc": "SO2025112601",
                    "gate_seq": 311,
                },
                dev="WHS-CHEM-0001",
                seq=12,
            ),
        ),
        (
            "goods_dispatch_denied_every_reason",
            key32,
            _envelope(
                "goods.dispatch",
                {
                    "site": "CHEM-01",
                    "terminal": "WHS-CHEM-0001",
                    "operator": "OP-02",
                    "product_class": "chemical_toxic",
                    "items": [
                        "pesticide:10803851010000000000000000000001",
                        "drug:81234560000000011234",
                    ],
                    "quantity": 100000,
                    "unit": "g",
                    "lot": "L20251101",
                    "licence": "JD-330200-2025-0042",
                    "decision": "deny",
                    "reasons": [
                        "no_licence",
                        "licence_expired",
                        "licence_not_for_class",
                        "over_licence_quantity",
                        "not_in_stock",
                        "already_dispatched",
                        "recalled_lot",
                    ],
                    "detail": ["drug:81234560000000011234"],
                    "reg_ver": 7,
                    "recall_ver": 3,
                },
                dev="GW-CHEM-0001",
                seq=311,
            ),
        ),
        (
            "goods_pack_seed_label",
            key32,
            _envelope(
                "goods.pack",
                {
                    "site": "AGRI-01",
                    "operator": "OP-01",
                    "action": "unpack",
                    "parent": {
                        "scheme": "gs1",
                        "id": "https://id.gs1.org/00/169312345678901238",
                        "level": "case",
                    },
                    "children": ["seed:410100000000000001", "seed:410100000000000002"],
                },
                dev="WHS-AGRI-0001",
                seq=3,
            ),
        ),
    ]


def _negative() -> list[tuple[str, str, str]]:
    # The innermost value sits at depth 17, one past the limit.
    deep = json.dumps(_envelope("elevator.status", {"n": _nest(15)}), ensure_ascii=False)
    return [
        (
            "float_value",
            '{"v":1,"dev":"MKT-S-0001","seq":1,"boot":1,"kind":"market.settlement",'
            '"ts":1763900000000,"tq":"ntp","body":{"total_fen":51.17}}',
            "float",
        ),
        (
            "integral_float_value",
            '{"v":1,"dev":"CYL-R-0001","seq":1,"boot":1,"kind":"cylinder.fill",'
            '"ts":1763900000000,"tq":"ntp","body":{"actual_net_g":14500.0}}',
            "float",
        ),
        (
            "lone_surrogate",
            '{"v":1,"dev":"ELV-B-0001","seq":1,"boot":1,"kind":"elevator.fault",'
            '"ts":1763900000000,"tq":"ntp","body":{"detail":"\\ud800"}}',
            "surrogate",
        ),
        ("nested_too_deep", deep, "nested"),
    ]


def build_vectors() -> list[dict[str, object]]:
    """The vectors, computed with the reference (MicroPython-safe) encoder."""
    cases: list[dict[str, object]] = []
    for name, key, record in _positive():
        data = canonical_pure(record)
        cases.append(
            {
                "name": name,
                "key_hex": hexlify(key),
                "record": record,
                "canonical": data.decode(),
                "mac": hexlify(hmac_sha256(key, data)),
            }
        )
    for name, text, reason in _negative():
        cases.append(
            {
                "name": name,
                "key_hex": hexlify(bytes(range(32))),
                "record_json": text,
                "expect_error": reason,
            }
        )
    return cases


def render(cases: list[dict[str, object]]) -> str:
    """The file's exact text."""
    return json.dumps(cases, ensure_ascii=False, indent=1) + "\n"


def main() -> None:
    VECTORS_PATH.parent.mkdir(parents=True, exist_ok=True)
    VECTORS_PATH.write_text(render(build_vectors()), encoding="utf-8")
    print(f"wrote {VECTORS_PATH}")


if __name__ == "__main__":
    main()
