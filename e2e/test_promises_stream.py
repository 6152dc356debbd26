"""Issue 22, item 3: a stream that connects and drops. A proxy on loopback in
front of the widget's origin lets every /api/stream connect, say hello, and
cuts it at once; Playwright's clock drives the widget's reconnect timers.
Reconnects and conversation reads must fall to the backoff's ceiling
(60 s, with jitter: at most 2 a minute), not go on at full speed; and a
stream that keeps failing says so once."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from conftest import T0, simple_messages, wait_ready


class CuttingProxy:
    """A TCP proxy to `upstream`; a connection whose first request is
    GET /api/stream is cut `cut_after` s (real time) after its answer starts."""

    def __init__(self, upstream_port: int, cut_after: float = 0.15):
        self.upstream = ("127.0.0.1", upstream_port)
        self.cut_after = cut_after
        self.requests: list[tuple[float, str]] = []   # (monotonic time, request line)
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        stream = threading.Event()

        def pipe(src, dst, watch):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    if watch:
                        for line in data.split(b"\r\n"):
                            if line[:8] in (b"GET /api", b"POST /ap", b"OPTIONS ") and b" HTTP/1" in line:
                                text = line.decode("latin-1")
                                with self.lock:
                                    self.requests.append((time.monotonic(), text))
                                if text.startswith("GET /api/stream"):
                                    stream.set()
                    dst.sendall(data)
                    if not watch and stream.is_set():
                        time.sleep(self.cut_after)
                        break
            except OSError:
                pass
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pipe, args=(client, upstream, True), daemon=True).start()
        pipe(upstream, client, False)
        client.close()
        upstream.close()

    def count(self, prefix: str, since: float = 0.0) -> int:
        with self.lock:
            return sum(1 for t, line in self.requests if t >= since and line.startswith(prefix))

    def stop(self):
        self.closed = True
        self.sock.close()


@pytest.fixture
def proxy(site):
    p = CuttingProxy(site.widget.port)
    yield p
    p.stop()


def run_minutes(page, proxy, minutes: float) -> None:
    """Advance the page's clock second by second, letting each reconnect
    happen (and be cut) in real time before the next second."""
    for _ in range(int(minutes * 60)):
        before = proxy.count("GET /api/stream")
        page.clock.run_for(1000)
        time.sleep(0.01)
        if proxy.count("GET /api/stream") != before:
            time.sleep(proxy.cut_after + 0.15)


def test_a_stream_cut_after_each_connect_falls_to_the_backoff_ceiling(site, context, guard, proxy):
    origin = f"http://127.0.0.1:{proxy.port}"
    guard.allowed.append(origin)
    guard.allowed_console_errors.append("ERR_INCOMPLETE_CHUNKED_ENCODING")   # the browser's own line for a cut stream
    bundle = site.publish(simple_messages({"id": "never", "rules": [{"rule": "page_views", "op": "greater", "value": 99}]}),
                          "cut")
    tag = site.tag(bundle=f"{origin}/bundles/cut.json").replace(site.widget_origin, origin)
    assert bundle.endswith("/bundles/cut.json")
    page = context.new_page()
    page.clock.install(time=T0)
    page.goto(site.page(tag=tag, name="cut"))
    wait_ready(page)
    # A visitor with a conversation (a token): each reconnect may re-read it.
    page.evaluate("""async () => {
        const base = [...document.scripts].map(s => s.src).find(s => s.includes('loader.js')).replace('loader.js', '');
        const manifest = await (await fetch(base + 'manifest.json')).json();
        const m = await import(base + ((manifest.served || {})['endpoint.mjs'] || 'endpoint.mjs'));
        await m.sendMessage('hello?'); }""")
    run_minutes(page, proxy, 4)          # the backoff climbs to its ceiling
    since = time.monotonic()
    run_minutes(page, proxy, 3)
    streams, reads = proxy.count("GET /api/stream", since), proxy.count("GET /api/conversation", since)
    assert streams <= 2 * 3 + 1, (streams, reads)    # at the ceiling: 30-60 s apart
    assert reads <= streams, (streams, reads)
    warned = [w for w in guard.warnings() if "stream" in w or "live" in w]
    assert len(warned) == 1, guard.warnings()
