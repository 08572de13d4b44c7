"""The example configs shipped in config/ parse and mean what their comments say."""

from pathlib import Path

from collector.settings import load_collector
from edge_agent.settings import load_agent
from edge_agent.terminal.settings import load_terminal
from edge_agent.terminal.whsettings import load_warehouse

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_agent_example_parses() -> None:
    s = load_agent(CONFIG / "agent.example.toml", files=False)
    assert s.site == "S001" and s.uplink.broker.tls and s.metrics_port == 9108
    assert s.uplink.backoff_max_s == 5.0


def test_collector_example_parses() -> None:
    s = load_collector(CONFIG / "collector.example.toml", files=False)
    assert s.shared_subscription and s.platform is not None
    assert s.platform.url.startswith("https://") and s.api_port == 8080


def test_terminal_example_parses() -> None:
    s = load_terminal(CONFIG / "terminal.example.toml", files=False)
    assert s.scale.protocol == "cas_ecr" and s.printer is not None
    assert s.sale.goods[2].mode == "counted" and s.sale.goods[2].price_fen_per_piece == 250
    assert s.sale.traders == {"9C3A11F0": "T3301060007"} and s.window == 8


def test_warehouse_terminal_example_parses() -> None:
    s = load_warehouse(CONFIG / "warehouse-terminal.example.toml", files=False)
    assert s.reader is not None and s.reader.protocol == "chafon"
    assert s.scanner is not None and s.scanner.scan_join_ms == 150
    assert s.products[1]["class"] == "chemical_toxic" and s.products[1]["amount"] == 50000
    assert s.parties[1]["licence"] == "JD-330200-2025-0042" and s.parties[2] == {
        "key": 2,
        "party": "李庄农资店",
    }
    assert s.licence_classes == ("chemical_toxic", "chemical_precursor")
