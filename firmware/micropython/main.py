# Board entry point: everything else lives in /lib (see firmware/micropython/README.md).
from te.runtime import boot

boot()
