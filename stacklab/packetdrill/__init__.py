"""packetdrill scripts against a stacklab host on virtual time (``stacklab packetdrill``).

:mod:`.lexer` and :mod:`.parser` read google/packetdrill's language into the dataclasses of
:mod:`.syntax`; :mod:`.runner` plays the script's remote host against a sans-IO
:class:`~stacklab.stack.host.Host`; :mod:`.syscalls` interprets the system calls on the sockets
of :mod:`.sockets` (the one module that touches the TCP/UDP layers); :mod:`.sysctl` is the one
table from Linux sysctls to stacklab's knobs; :mod:`.report` prints the results.
"""
