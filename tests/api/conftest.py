"""
conftest.py - fixtures for the pilotlight API suite.

Every test file gets one server (`hub`, module-scoped) on a free loopback port
with a fresh data directory; tests inside a file use distinct entity ids and
tenants so they do not depend on each other's order. `context_server` serves
the city @context (and any extra documents a test registers) on loopback and
counts requests, so context fetching and caching can be checked without the
network.

Run:  /usr/bin/python3 -m pytest -q tests/api          (Debian's python3-pytest)
      PL_SANITIZE=1 PL_BINARY=build/asan/pilotlight /usr/bin/python3 -m pytest -q tests/api

Environment:
  PL_BINARY    the pilotlight binary (default /work/main/build/release/pilotlight)
  PL_FIXTURES  the shared fixtures (default /work/shared/fixtures)
  PL_SANITIZE  1 when the binary is an ASan/UBSan build: longer timeouts, and
               a sanitizer report in the server's stderr fails the module.
"""
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import (  # noqa: E402  (re-exported for the tests)
    BINARY, FIXTURES, SLOW, load_fixture_entities,
)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class HubError(Exception):
    pass


class Hub:
    """A pilotlight server process on 127.0.0.1 and a keep-alive client."""

    START_TIMEOUT = 30 * SLOW
    REQUEST_TIMEOUT = 30 * SLOW

    def __init__(self, extra_args=(), data_dir=None, env=None):
        self.extra_args = list(extra_args)
        self.env = env  # the process environment (None: this one's)
        self.own_data = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="pl-api-data-")
        self.log_dir = tempfile.mkdtemp(prefix="pl-api-log-")
        self.stderr_path = os.path.join(self.log_dir, "stderr.log")
        self.proc = None
        self.port = None
        self.conn = None
        self.n_starts = 0
        self.start()

    # ---- process --------------------------------------------------------
    def start(self, port=None):
        if not os.path.exists(BINARY):
            raise HubError("binary %s does not exist (set PL_BINARY)" % BINARY)
        last = None
        for attempt in range(3):
            self.port = port if (port and attempt == 0) else free_port()
            try:
                self._spawn()
                return
            except HubError as e:
                last = e
                if self.proc and self.proc.poll() is None:
                    self._terminate()
        raise last

    def _spawn(self):
        self.n_starts += 1
        err = open(self.stderr_path, "ab")
        err.write(("\n==== start %d port %d ====\n" % (self.n_starts, self.port)).encode())
        err.flush()
        args = [BINARY, "serve", "--port", str(self.port), "--bind", "127.0.0.1",
                "--data", self.data_dir, "--log-level", os.environ.get("PL_LOG_LEVEL", "warn")] + self.extra_args
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                     env=self.env)
        err.close()
        self._close_conn()
        deadline = time.monotonic() + self.START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HubError("pilotlight exited with %s during start:\n%s"
                               % (self.proc.returncode, self.stderr_tail()))
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2 * SLOW)
                c.request("GET", "/health")
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise HubError("pilotlight did not answer GET /health within %d s:\n%s"
                       % (self.START_TIMEOUT, self.stderr_tail()))

    def _terminate(self):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10 * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        return self.proc.returncode

    def stop(self):
        """SIGTERM (SIGKILL after 10 s); returns the exit status."""
        self._close_conn()
        return self._terminate()

    def restart(self):
        """SIGTERM, then start again on the same data dir (and port if free)."""
        rc = self.stop()
        self.start(port=self.port)
        return rc

    def kill9(self):
        self._close_conn()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def close(self):
        self.stop()
        if self.own_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_tail(self, n=4000):
        return self.stderr_text()[-n:]

    def sanitizer_report(self):
        t = self.stderr_text()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                       "ThreadSanitizer"):
            if marker in t:
                return t[t.index(marker) - 200 if t.index(marker) > 200 else 0:][:6000]
        return None

    # ---- HTTP -----------------------------------------------------------
    def _close_conn(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None

    def _connection(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                   timeout=self.REQUEST_TIMEOUT)
        return self.conn

    def request(self, method, path, body=None, headers=None, tenant=None,
                ctype="application/json", raw=False):
        """Returns (status, headers with lowercase keys, parsed JSON or None).

        body: dict/list (sent as JSON), str or bytes (sent as is), or None.
        Repeated response headers (Link) are joined with ", ". The raw body
        text is kept in self.last_text."""
        h = {}
        data = None
        if body is not None:
            if isinstance(body, (bytes, bytearray)):
                data = bytes(body)
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = json.dumps(body).encode()
            if ctype:
                h["Content-Type"] = ctype
        if tenant is not None:
            h["NGSILD-Tenant"] = tenant
        if headers:
            h.update(headers)
        for attempt in range(2):
            conn = self._connection()
            try:
                conn.request(method, path, body=data, headers=h)
                resp = conn.getresponse()
                text = resp.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError, http.client.CannotSendRequest):
                self._close_conn()
                if attempt == 1:
                    raise
        hdrs = {}
        for k, v in resp.getheaders():
            k = k.lower()
            hdrs[k] = hdrs[k] + ", " + v if k in hdrs else v
        if resp.will_close:
            self._close_conn()
        self.last_text = text.decode("utf-8", "replace")
        parsed = None
        if text.strip():
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        return resp.status, hdrs, parsed

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, body=None, **kw):
        return self.request("DELETE", path, body, **kw)


def _check_sanitizer(h):
    rep = h.sanitizer_report()
    if rep:
        pytest.fail("sanitizer report in the server's stderr:\n" + rep, pytrace=False)


@pytest.fixture(scope="module")
def hub():
    h = Hub()
    yield h
    h.close()
    _check_sanitizer(h)


@pytest.fixture(scope="module")
def hub_factory():
    """Start extra hubs (e.g. with other flags); all stopped at module end."""
    made = []

    def make(*extra_args, data_dir=None, env=None):
        h = Hub(extra_args, data_dir=data_dir, env=env)
        made.append(h)
        return h
    yield make
    for h in made:
        h.close()
    for h in made:
        _check_sanitizer(h)


# ---- the @context server -------------------------------------------------

class ContextServer:
    """Serves /contexts/city.jsonld (the city context fixture) plus documents
    registered with add(); counts requests per path. status != 200 makes every
    answer that status; stop() closes the socket (the port stays reserved for
    start())."""

    def __init__(self):
        with open(os.path.join(FIXTURES, "entities", "city-context.jsonld"), "rb") as f:
            self.docs = {"/contexts/city.jsonld": f.read()}
        self.hits = {}
        self.status = 200
        self.lock = threading.Lock()
        self.port = free_port()
        self.httpd = None
        self.thread = None
        self.start()

    @property
    def base(self):
        return "http://localhost:%d" % self.port

    def url(self, path="/contexts/city.jsonld"):
        return self.base + path

    def add(self, path, doc):
        self.docs[path] = json.dumps(doc).encode() if not isinstance(doc, bytes) else doc
        return self.url(path)

    def count(self, path="/contexts/city.jsonld"):
        with self.lock:
            return self.hits.get(path, 0)

    def start(self):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                path = self.path.split("?")[0]
                with outer.lock:
                    outer.hits[path] = outer.hits.get(path, 0) + 1
                doc = outer.docs.get(path)
                status = outer.status if doc is not None else 404
                body = doc if status == 200 else b'{"error": "not found"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/ld+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        for _ in range(50):
            try:
                self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("context server cannot bind port %d" % self.port)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


@pytest.fixture(scope="module")
def context_server():
    cs = ContextServer()
    yield cs
    cs.stop()


@pytest.fixture(scope="module")
def city_entities(context_server):
    """The fixture entities (name -> dict) with {CONTEXT_PORT} substituted."""
    return load_fixture_entities(context_server.port)
