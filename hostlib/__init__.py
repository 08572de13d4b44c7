"""Host-only plumbing the roles share: config reading, the error root, the MQTT link with
its broker settings, SQLite helpers, backoff, queues, metrics and the device registry; and
the broker wall's pieces: the project CA (``pki``, ``cadir``), Mosquitto password hashes
(``mqttpasswd``) and broker configs made from the registry (``brokerconf``).

The floor between the wire contract and the roles: it imports only :mod:`wire` and
third-party packages, and is imported by ``edge_agent``, ``collector``, ``simulators`` and
``traceedge``.
"""
