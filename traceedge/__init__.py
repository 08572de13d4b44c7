"""traceedge: command line, provisioning, demo and the host-side plumbing the roles share."""

__version__ = "0.1.0"
