"""
receiver.py - a real HTTP notification receiver on a free loopback port,
recording every POST (path, headers, parsed body), for the subscription and
ingest tests. status / delay make it answer with an error or slowly.
"""
import http.server
import json
import threading
import time

from conftest import free_port
from helpers import SLOW


class Receiver:
    """Records POSTs: list of (path, headers dict lowercased, parsed body)."""

    def __init__(self, status=200, delay=0.0):
        self.status = status
        self.delay = delay
        self.got = []
        self.lock = threading.Lock()
        self.port = free_port()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                data = self.rfile.read(n)
                try:
                    body = json.loads(data)
                except ValueError:
                    body = None
                with outer.lock:
                    outer.got.append((self.path, {k.lower(): v for k, v in self.headers.items()},
                                      body))
                if outer.delay:
                    time.sleep(outer.delay)
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/notify" % self.port

    def bodies(self):
        with self.lock:
            return [b for _, _, b in self.got]

    def wait(self, n, timeout=10 * SLOW):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.bodies()) >= n:
                return self.bodies()
            time.sleep(0.02)
        raise AssertionError("expected %d notifications, got %d: %r"
                             % (n, len(self.bodies()), self.bodies()))

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
