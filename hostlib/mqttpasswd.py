"""Mosquitto's password hash (``mosquitto_passwd`` of Mosquitto 2.0), made in Python.

A password file line is ``user:$7$<iterations>$<base64 salt>$<base64 hash>``: PBKDF2 with
HMAC-SHA512 over the UTF-8 password and the 12 raw salt bytes, 64 bytes out, standard
base64 with padding. Mosquitto reads the iteration count from the line; 101 is its own
default. The passwords we hash are random (:func:`new_password`, 192 bits), so stretching
adds nothing against guessing, and a low count keeps a reconnect storm cheap for the broker.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

ITERATIONS = 101
SALT_BYTES = 12


def new_password() -> str:
    """A random MQTT password: 32 URL-safe characters (fits the firmware's 128)."""
    return secrets.token_urlsafe(24)


def hash_password(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The ``$7$`` hash Mosquitto checks ``password`` against (fresh salt unless given)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    dk = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(dk).decode()}"
