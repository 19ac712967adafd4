"""The threaded loopback HTTP serving both emulators share: start on a port, stop promptly."""

from __future__ import annotations

import signal
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def serve(handler: type[BaseHTTPRequestHandler], host: str, port: int, name: str, *,
          context: ssl.SSLContext | None = None, **handler_attrs: Any) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve ``handler`` (bound to ``handler_attrs``) on a daemon thread; port 0 picks a free one."""
    # TCP_NODELAY: headers and body go out as separate writes, and Nagle plus delayed ACKs
    # would hold each answer back ~40 ms, which no real server does.
    bound = type(handler.__name__, (handler,), {"disable_nagle_algorithm": True, **handler_attrs})
    httpd = ThreadingHTTPServer((host, port), bound)
    httpd.daemon_threads = True
    if context is not None:
        # The handshake happens in the connection's own thread, not in the accept loop.
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)
    thread.start()
    return httpd, thread


def shutdown(httpd: ThreadingHTTPServer, thread: threading.Thread) -> None:
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def run_until_interrupted(stop: Callable[[], None]) -> int:
    """For the emulators' command lines: block until Ctrl-C or SIGTERM, then ``stop``."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop()
    return 0
