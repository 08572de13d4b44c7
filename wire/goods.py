"""Warehouse goods (出入库): the product classes and units the ``goods.*`` records use.

One list for the agent's dispatch gate, the warehouse handheld's firmware, the collector's
licence registry and its reporting list (the record schemas in ``config/schemas/goods.*.json``
enumerate the same values).
"""

PRODUCT_CLASSES = (
    "chemical_toxic",
    "chemical_precursor",
    "chemical",
    "pesticide",
    "fertiliser",
    "feed",
    "seed",
    "drug",
    "other",
)
CONTROLLED_CLASSES = ("chemical_toxic", "chemical_precursor")
"""Highly toxic and precursor chemicals: sold only against a licence on file, each sale
reported to public security within 5 days (危险化学品安全管理条例 art. 38-41)."""
UNITS = ("piece", "g", "ml")
DISPATCH_REASONS = (
    "no_licence",
    "licence_expired",
    "licence_not_for_class",
    "over_licence_quantity",
    "not_in_stock",
    "already_dispatched",
    "recalled_lot",
)
"""Why the agent's dispatch gate refuses a dispatch (``edge_agent.dispatchgate``); the
handheld shows them by these names."""
