"""Central collector: verify, store once, acknowledge, forward to the city platform."""
