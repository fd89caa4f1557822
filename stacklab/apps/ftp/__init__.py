"""FTP (RFC 959, EPSV/EPRT from RFC 2428, SIZE from RFC 3659): server and client.

FTP is the two-connection protocol: commands and replies on the control connection, each
listing or file on a fresh data connection, which either the client opens to a port the
server listens on (passive: PASV/EPSV) or the server opens to a port the client listens on
(active: PORT/EPRT). The server here does both; so does the client (``mode``).

Server (:class:`FtpServer`, started by :func:`serve_ftp`): USER/PASS (anonymous optional),
PWD, CWD, CDUP, LIST, NLST, RETR, STOR, SIZE, DELE, MKD, RMD, TYPE, MODE, STRU, PASV, EPSV,
PORT, EPRT, SYST, FEAT, OPTS, NOOP, HELP, QUIT. Files live in a :class:`DiskFs` confined to a
root directory (``..``, absolute paths and symlinks cannot leave it), or in a
:class:`VirtualFs` where any file name reads as a deterministic body of ``bytes`` bytes and
uploads are kept in memory. Transfers are always binary (TYPE A is accepted, as most servers
do, without line-ending conversion); listings are CRLF text.

Bounds: command line length, file size (``limits.max_message``), concurrent clients (421), bad
commands per session, idle time, time to open a data connection. PORT/EPRT to an address other
than the client's own is refused (no FTP bounce), and a passive data connection from another
address than the client's is dropped.

The package: :mod:`.fs` (the two file systems), :mod:`.channel` (the data connection),
:mod:`.server` and :mod:`.client`.
"""

from .client import FtpClient, FtpError, FtpResult, ftp_get, ftp_put
from .fs import DiskFs, VirtualFs
from .server import FtpServer, LoginState, serve_ftp

__all__ = [
    "DiskFs",
    "FtpClient",
    "FtpError",
    "FtpResult",
    "FtpServer",
    "LoginState",
    "VirtualFs",
    "ftp_get",
    "ftp_put",
    "serve_ftp",
]
