"""Hardware and platform simulators behind the same seams as the real things."""
