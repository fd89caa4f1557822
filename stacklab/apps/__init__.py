"""Applications on stacklab's TCP: HTTP/1.1 (h11), SMTP, FTP (active and passive), SSH (asyncssh).

Each module has a server started by a plain coroutine (``serve_http``, ``serve_smtp``,
``serve_ftp``, ``serve_ssh``) and a client (``http_get``/``HttpClient``, ``send_mail``,
``ftp_get``/``ftp_put``/``FtpClient``, ``ssh_exec``). All of them take a network object first:
a stacklab Host, or :class:`stacklab.apps.common.AsyncioNet` for the machine's own sockets.
:mod:`stacklab.scenario.app_kinds` makes them scenario app kinds. Submodules are not
imported here (asyncssh is heavy); import the one you need.
"""
