"""Host-side transports: move bytes between the codecs in :mod:`drivers.codecs` and real
(or simulated) devices over pyserial, pyscard and pymodbus. Errors are translated into each
transport's own hierarchy with ``raise ... from exc``; every error says whether retrying
can help (``retry``).

Serial (pyserial, asyncio):

    serial_port   SerialDevice: open/close, request/exchange, frames; reconnect policy
    scales        read_weight() for sics, toledo8217, cas_ecr, toledo_continuous
    readers       UHF inventory() (chafon, r2000); barcode scans(), read_scan()
    errors        DriverError and its kinds (serial transport and drivers on top)
"""
