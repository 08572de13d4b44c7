"""traceedge terminal firmware core (MicroPython). See firmware/micropython/README.md."""
