"""MQTT topics of the wire contract. ``prefix`` is configurable ("" by default)."""

MAX_SITE_LEN = 20  # so that "<TYPE>-<site>-<6 hex>" stays a device id of at most 32
_SITE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


def check_site(site: object) -> str:
    """``site`` if it is a site code (1..20 of ``A-Z a-z 0-9 - _ .``, not all dots: safe in
    topics, device ids and file names); ``ValueError`` naming the rule otherwise."""
    if (
        not isinstance(site, str)
        or not 0 < len(site) <= MAX_SITE_LEN
        or any(c not in _SITE_CHARS for c in site)
        or site.strip(".") == ""
    ):
        raise ValueError(
            "a site code is 1..%d of A-Z a-z 0-9 - _ . (got %r)" % (MAX_SITE_LEN, site)
        )
    return site


def _p(prefix: str) -> str:
    return prefix.rstrip("/") + "/" if prefix else ""


def terminal_rec(dev: str, prefix: str = "") -> str:
    """Terminal → gateway records."""
    return _p(prefix) + "t/" + dev + "/rec"


def terminal_ack(dev: str, prefix: str = "") -> str:
    """Gateway → terminal acknowledgements."""
    return _p(prefix) + "t/" + dev + "/ack"


def terminal_cmd(dev: str, prefix: str = "") -> str:
    """Gateway → terminal commands."""
    return _p(prefix) + "t/" + dev + "/cmd"


def terminal_gate(dev: str, prefix: str = "") -> str:
    """Terminal → gateway fill-gate requests (answered on ``t/{dev}/cmd``)."""
    return _p(prefix) + "t/" + dev + "/gate"


def terminal_dispatch(dev: str, prefix: str = "") -> str:
    """Terminal → gateway warehouse dispatch-gate requests (answered on ``t/{dev}/cmd``)."""
    return _p(prefix) + "t/" + dev + "/dispatch"


def site_up(site: str, prefix: str = "") -> str:
    """Gateway → central batches."""
    return _p(prefix) + "edge/" + site + "/up"


def site_ack(site: str, prefix: str = "") -> str:
    """Central → gateway batch acknowledgements."""
    return _p(prefix) + "edge/" + site + "/ack"


def site_cmd(site: str, prefix: str = "") -> str:
    """Central → gateway commands."""
    return _p(prefix) + "edge/" + site + "/cmd"


def site_status(site: str, prefix: str = "") -> str:
    """Gateway → central: the agent's health (backlog, oldest record, alarms), retained."""
    return _p(prefix) + "edge/" + site + "/status"


def all_site_status(prefix: str = "") -> str:
    return _p(prefix) + "edge/+/status"


def shared_up(group: str, prefix: str = "") -> str:
    """The collectors' shared subscription to every site's batches."""
    return "$share/" + group + "/" + _p(prefix) + "edge/+/up"


def all_up(prefix: str = "") -> str:
    """Plain subscription to every site's batches (brokers without shared subscriptions)."""
    return _p(prefix) + "edge/+/up"


PRESENCE_UP = b"up"  # a collector's presence payloads (collector_state)
PRESENCE_DOWN = b"down"


def collector_state(client_id: str, prefix: str = "") -> str:
    """A collector's presence, retained: ``up`` once its subscriptions stand, ``down`` as
    its last will. Outside ``edge/``, so no site code can make a site topic collide."""
    return _p(prefix) + "collectors/" + client_id


def all_collector_states(prefix: str = "") -> str:
    """The agents' subscription to the collectors' presence."""
    return _p(prefix) + "collectors/+"


def is_collector_state(topic: str, prefix: str = "") -> bool:
    """Whether ``topic`` is a :func:`collector_state` topic."""
    parts = split(topic, prefix)
    return len(parts) == 2 and parts[0] == "collectors"


def all_terminal_recs(prefix: str = "") -> str:
    """The agent's subscription to its terminals' records."""
    return _p(prefix) + "t/+/rec"


def split(topic: str, prefix: str = "") -> list[str]:
    """Topic levels after the prefix, e.g. ``['t', 'CYL-1', 'rec']``."""
    p = _p(prefix)
    if p and topic.startswith(p):
        topic = topic[len(p) :]
    return topic.split("/")
