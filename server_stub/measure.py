"""Measure the reference endpoint on a real uvicorn server (numbers quoted in
docs/endpoint.md):  python -m server_stub.measure

- latency from an agent's reply (POST) to the visitor's SSE event;
- latency of a visitor message (POST);
- beacon throughput (batches of 100 events) and the stats query over them.
Rate limits are lifted so that the server, not the limiter, is measured."""

import http.client
import json
import pathlib
import socket
import statistics
import tempfile
import threading
import time
import urllib.request

import uvicorn

from server_stub.app import create_widget_app

tmp = pathlib.Path(tempfile.mkdtemp()); (tmp/"w").mkdir(); (tmp/"w"/"loader.js").write_text("")
app = create_widget_app(tmp/"w", db_path=tmp/"e.db", rate_limits={"message": (10**6, 10**6), "register": (10**6, 10**6), "events": (10**6, 10**6), "events_ip": (10**6, 10**6)})
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
threading.Thread(target=srv.run, daemon=True).start()
while not srv.started: time.sleep(0.01)
U = f"http://127.0.0.1:{port}"
def call(m, p, b=None, tok=None):
    h = {"content-type": "application/json"}
    tok = tok or (app.state.agent_token if p.startswith("/api/agent") else None)
    if tok: h["authorization"] = "Bearer " + tok
    with urllib.request.urlopen(urllib.request.Request(U+p, data=None if b is None else json.dumps(b).encode(), headers=h, method=m)) as r:
        return json.loads(r.read())
tok = call("POST", "/api/visitors", {})["token"]
cid = call("POST", "/api/conversation/messages", {"text": "hi"}, tok)["conversation"]
conn = http.client.HTTPConnection("127.0.0.1", port); conn.request("GET", f"/api/stream?visitor={tok}"); resp = conn.getresponse()
def next_event():
    ev = None
    while True:
        line = resp.fp.readline().decode().rstrip("\n")
        if line.startswith("event: "): ev = line[7:]
        elif line == "" and ev: return ev
next_event(); next_event()
lat = []
for i in range(50):
    t = time.perf_counter(); call("POST", f"/api/agent/conversations/{cid}/messages", {"text": f"a{i}"})
    assert next_event() == "message"; lat.append((time.perf_counter() - t) * 1000)
print(f"agent reply -> visitor SSE: median {statistics.median(lat):.1f} ms, p95 {sorted(lat)[47]:.1f} ms (n=50)")
lat = []
for i in range(100):
    t = time.perf_counter(); call("POST", "/api/conversation/messages", {"text": f"v{i}"}, tok); lat.append((time.perf_counter() - t) * 1000)
print(f"POST visitor message: median {statistics.median(lat):.1f} ms, p95 {sorted(lat)[94]:.1f} ms (n=100)")
t = time.perf_counter()
for b in range(50):
    call("POST", "/api/events", {"sender": "m", "events": [{"id": f"{b}-{k}", "type": "shown", "message": f"m{k%5}"} for k in range(100)]})
dt = time.perf_counter() - t
print(f"beacons: 5000 events in 50 batches: {dt*1000:.0f} ms ({5000/dt:.0f} events/s)")
t = time.perf_counter(); st = call("GET", "/api/agent/stats?bucket=minute"); print(f"stats over {sum(m['shown'] for m in st['messages'])} events: {(time.perf_counter()-t)*1000:.1f} ms")
