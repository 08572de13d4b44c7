"""Markets at the collector: traders, batches and their stock, stop-trading orders, trace chains.

One job per module:

* :mod:`~collector.markets.schema`: the tables, indexes and triggers in the store, and the
  projection that applies stored ``market.entry`` / ``market.settlement`` records to them
  (stock per batch, stop flags, alarms);
* :mod:`~collector.markets.traders`: the trader registry import;
* :mod:`~collector.markets.queries`: readers (trace chain, batch view, stock), which need
  only a read-only connection;
* :mod:`~collector.markets.stops`: stop-trading orders (which follow the goods downstream);
* :mod:`~collector.markets.chain`: the chain across markets (卡单同行): hops back, reach
  forward, chain flags;
* :mod:`~collector.markets.results`: the plain values the readers and orders return (the
  query API's response models describing them live beside the API, in
  :mod:`collector.api_models`).

Money in fen, weights in grams, times in ms since the epoch (UTC): integers throughout.
"""

from collector.markets.queries import (
    batch_known,
    batch_link,
    batch_markets,
    batch_view,
    stop_order,
    trace_chain,
)
from collector.markets.results import (
    BatchLink,
    BatchSale,
    BatchView,
    Entry,
    EntrySource,
    RecordRef,
    Sale,
    SaleLine,
    Stock,
    StopOrder,
    StopResult,
    TraceChain,
    TraceCodeFields,
    Trader,
    UpstreamHop,
    UpstreamSale,
)
from collector.markets.schema import ensure_schema, project, projection_backlog
from collector.markets.stops import (
    NotStopped,
    UnknownBatch,
    follow_stops,
    lift_stop,
    stop_list_version,
    stop_trading,
    stops,
)
from collector.markets.traders import import_traders

__all__ = [
    "BatchLink",
    "BatchSale",
    "BatchView",
    "Entry",
    "EntrySource",
    "NotStopped",
    "RecordRef",
    "Sale",
    "SaleLine",
    "Stock",
    "StopOrder",
    "StopResult",
    "TraceChain",
    "TraceCodeFields",
    "Trader",
    "UnknownBatch",
    "UpstreamHop",
    "UpstreamSale",
    "batch_known",
    "batch_link",
    "batch_markets",
    "batch_view",
    "ensure_schema",
    "follow_stops",
    "import_traders",
    "lift_stop",
    "project",
    "projection_backlog",
    "stop_list_version",
    "stop_order",
    "stop_trading",
    "stops",
    "trace_chain",
]
