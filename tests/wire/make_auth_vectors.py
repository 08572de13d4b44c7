"""Generate ``config/vectors/auth.json``: golden vectors of the sealed control messages
(:mod:`wire.auth`) and of the centre's signed commands (:mod:`wire.command`).

Run ``python -m tests.wire.make_auth_vectors`` from the repository root to regenerate;
``tests/wire/test_auth.py`` fails when the file and this generator disagree.

Each ``sealed`` case: ``name``, ``key_hex``, ``fn`` (the :mod:`wire.auth` builder), ``args``
(its arguments after the key, as JSON) and ``bytes`` (what it must produce, as a string).
Each ``command`` case: ``seed_hex`` (the Ed25519 private key's 32 bytes), ``command`` (the
unsigned command) and ``bytes`` (the signed command; Ed25519 signatures are deterministic).
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.wire import mp_auth_vectors
from wire import auth, command

VECTORS_PATH = Path(__file__).resolve().parents[2] / "config" / "vectors" / "auth.json"

KEY = bytes(range(32))
SEED = bytes(range(100, 132))


def sealed_cases() -> list[dict[str, object]]:
    cases: list[tuple[str, str, dict[str, object]]] = [
        (
            "ack_simple",
            "terminal_ack",
            {"dev": "CYL-S1-0001", "wm": 41, "ranges": [[43, 45]], "bad": []},
        ),
        (
            "ack_bad_and_ranges",
            "terminal_ack",
            {"dev": "SCL-M1-0002", "wm": 0, "ranges": [[2, 2], [4, 9]], "bad": [3]},
        ),
        (
            "gate_allow",
            "gate_answer",
            {
                "dev": "CYL-S1-0001",
                "rid": 65537,
                "nonce": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                "decision": "allow",
                "reasons": [],
                "reg_ver": 3,
                "seq": 17,
            },
        ),
        (
            "gate_deny_error",
            "gate_answer",
            {
                "dev": "CYL-S1-0001",
                "rid": 65538,
                "nonce": "00112233445566778899aabbccddeeff",
                "decision": "deny",
                "reasons": ["scrapped", "inspection_overdue"],
                "reg_ver": 3,
                "error": "outbox full: not recorded",
            },
        ),
        (
            "dispatch_request",
            "dispatch_request",
            {
                "dev": "WHS-S1-0001",
                "fields": {
                    "id": 7,
                    "n": "9f2c41d07be85a13c4e6f0b2a7d95e31",
                    "operator": "OP-02",
                    "product_class": "chemical_toxic",
                    "items": ["https://id.gs1.org/00/169300000000000011"],
                    "quantity": 50000,
                    "unit": "g",
                    "lot": "L20251101",
                    "licence": "JD-330200-2025-0042",
                    "party": "宁波港华电镀厂",
                },
            },
        ),
        (
            "batch_ack",
            "batch_ack",
            {
                "site": "S1",
                "gw": "GW-S1-0001",
                "batch_id": "b-00000001-0000000010",
                "digest": auth.batch_digest(b"batch bytes"),
                "stored": 9,
                "dup": 1,
                "bad": 0,
            },
        ),
        (
            "stop_list",
            "stop_list",
            {
                "dev": "SCL-M1-0002",
                "version": 5,
                "batches": [{"batch_id": "B-7", "reason": "检测不合格"}],
            },
        ),
        (
            "status",
            "status",
            {
                "site": "S1",
                "gw": "GW-S1-0001",
                "fields": {"depth": 12, "oldest_age_s": 3, "alarms": ["outbox_full"], "名": "中文"},
            },
        ),
    ]
    return [
        {
            "name": name,
            "key_hex": KEY.hex(),
            "fn": fn,
            "args": args,
            "bytes": mp_auth_vectors.build(fn, args, KEY).decode(),
        }
        for name, fn, args in cases
    ]


def command_cases() -> list[dict[str, object]]:
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    cmds: list[tuple[str, dict[str, object]]] = [
        (
            "stop_list",
            {
                "type": "stop_list",
                "site": "S1",
                "version": 7,
                "expires": 1900000000000,
                "batches": [{"batch_id": "B-1", "reason": "菜农药残留超标", "at": 1763900000000}],
            },
        ),
        (
            "registry_all_sites",
            {
                "type": "cylinder_registry",
                "site": "*",
                "version": 12,
                "expires": 1900000000000,
                "cylinders": [{"cyl": "C-0001", "status": "ok"}],
            },
        ),
    ]
    return [
        {
            "name": n,
            "seed_hex": SEED.hex(),
            "command": c,
            "bytes": command.sign_command(c, key).decode(),
        }
        for n, c in cmds
    ]


def build() -> dict[str, object]:
    return {"sealed": sealed_cases(), "command": command_cases()}


def main() -> None:
    VECTORS_PATH.write_text(
        json.dumps(build(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(f"wrote {VECTORS_PATH}")


if __name__ == "__main__":
    main()
