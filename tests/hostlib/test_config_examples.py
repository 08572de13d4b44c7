"""The example configs shipped in config/ parse and mean what their comments say."""

from pathlib import Path

from collector.settings import load_collector
from edge_agent.settings import load_agent

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_agent_example_parses() -> None:
    s = load_agent(CONFIG / "agent.example.toml", files=False)
    assert s.site == "S001" and s.uplink.broker.tls and s.metrics_port == 9108
    assert s.uplink.backoff_max_s == 5.0


def test_collector_example_parses() -> None:
    s = load_collector(CONFIG / "collector.example.toml", files=False)
    assert s.shared_subscription and s.platform is not None
    assert s.platform.url.startswith("https://") and s.api_port == 8080
