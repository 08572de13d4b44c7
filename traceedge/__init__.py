"""traceedge: the top floor: the command line (:mod:`traceedge.cli`), provisioning, launching
the roles, brokers for tests and the demo. Imported by nothing but tests and benchmarks; the
plumbing the roles share is in :mod:`hostlib`."""

__version__ = "0.1.0"
