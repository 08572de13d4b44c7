"""Device codecs (sans-IO, MicroPython subset) and host transports."""
