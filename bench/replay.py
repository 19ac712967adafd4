"""Replays a recorded watch stream at full speed, so an ingest benchmark measures the client, not the server.

The Kubernetes emulator writes one chunk per event and is slower than the
clients being compared; a real API server is not the bottleneck either. This
server answers every GET with the same recorded bytes (what the emulator sent
for a watch) in large chunks, then ends the stream as a watch timeout would.

    python -m bench.replay STREAM_FILE    # prints the port it listens on
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHUNK = 256 * 1024


class _Replay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    stream: bytes = b""

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for start in range(0, len(self.stream), CHUNK):
                part = self.stream[start:start + CHUNK]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True  # the client stopped reading: expected once it has what it needs


def main() -> int:
    handler = type("Replay", (_Replay,), {"stream": Path(sys.argv[1]).read_bytes()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
