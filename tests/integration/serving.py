"""Stand-ins for services that cannot be installed here answer from a thread of the test process."""

from __future__ import annotations

import threading
from http.server import HTTPServer


class Serving:
    """``server`` answering on 127.0.0.1 from a daemon thread until ``close()``; ``url`` is its base URL."""

    def __init__(self, server: HTTPServer, scheme: str) -> None:
        self.server = server
        self.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
