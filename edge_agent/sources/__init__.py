"""Sources: what brings terminal records into the agent besides the local MQTT broker.

A source hands the agent exactly what an MQTT terminal would publish (a record as on
``t/{dev}/rec``, a gate request as on ``t/{dev}/gate``), so the same intake, identity
rules, group commit and sealed acks apply; what the agent answers those devices (acks,
gate answers, commands) goes back through the source instead of the broker. Each kind is
a module (:mod:`edge_agent.sources.kinds` lists them) with ``parse`` (its config table)
and ``build``; :mod:`edge_agent.sources.base` has the interface and the router.
"""
