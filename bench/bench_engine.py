"""Per-event decision time of the rule engine in CPython.

1,000 messages x 10 conditions each (URL, geo, language, counts, UTM,
widget and several time rules), driven through a journey of page views,
wake-ups at next_wakeup, exit intents, widget and chat events. Prints a
table per event type; numbers go to docs/benchmarks.md. Not run by tests.

    python bench/bench_engine.py [--messages 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from widget.runtime.bundle import parse  # noqa: E402
from widget.runtime.engine import Engine, settle_memory  # noqa: E402

SECTIONS = 50


def make_payload(n: int, seed: int = 7) -> dict:
    rnd = random.Random(seed)
    messages = []
    for i in range(n):
        rules = [
            {"rule": "page_url", "op": rnd.choice(["contains", "matches"]),
             "value": f"/s{i % SECTIONS}" if i % 2 else f"/s{i % SECTIONS}/*"},
            {"rule": "country", "op": "equals", "value": rnd.sample(["DE", "AT", "CH", "FR", "US", "GB"], 2)},
            {"rule": "browser_language", "op": "is_not", "value": rnd.choice(["ja", "ko", "zh"])},
            {"rule": "time_on_page", "op": "greater", "value": rnd.randint(1, 60)},
            {"rule": "visits", "op": "less", "value": rnd.randint(2, 10)},
            {"rule": "page_views", "op": "greater", "value": rnd.randint(0, 3)},
            {"rule": "widget_opened", "op": "is_false"},
            {"rule": "invitations_sent", "op": "less", "value": 50},
            {"any": [{"rule": "utm_source", "op": "equals", "value": ["google", "bing"]},
                     {"rule": "time_this_visit", "op": "greater", "value": rnd.randint(10, 300)}]},
            {"rule": "time_since_widget_closed", "op": "less", "value": 900} if i % 3 else
            {"rule": "time_before_exit_intent", "op": "greater", "value": rnd.randint(1, 30)},
        ]
        messages.append({"id": f"m{i}", "priority": rnd.randint(0, 5), "delay": rnd.choice([0, 0, 2]),
                         "content": {"text": f"message {i}"}, "rules": rules})
    return {"site": "bench", "widgets": [{"id": "main"}], "messages": messages}


def journey(rnd: random.Random):
    """Yield (label, events, dt) steps; label "wake" means a next_wakeup step."""
    yield "page_view", [{"type": "page_view", "url": f"https://shop.example/s{rnd.randrange(SECTIONS)}/a?utm_source=google", "referrer": ""}], 0
    yield "geo", [{"type": "geo", "country": "DE", "city": "Berlin"}], 300
    for _ in range(6):
        yield "wake", None, None
        kind = rnd.choice(["exit_intent", "widget_open", "widget_close", "visitor_message", "agent_message", "dismiss", "tick"])
        yield kind, [{"type": kind, "message": "m1"}], rnd.randint(200, 4000)
    yield "page_view", [{"type": "page_view", "url": f"https://shop.example/s{rnd.randrange(SECTIONS)}/", "referrer": ""}], 5000


def run(payload, rounds: int, incremental: bool, freeze: bool = True) -> dict:
    compiled = parse(payload)
    if freeze:
        settle_memory()
    timings: dict[str, list[float]] = {}
    rnd = random.Random(1)
    for r in range(rounds):
        engine = Engine(compiled, context={"language": "de-DE", "user_agent": "Mozilla/5.0 (Windows NT 10.0) Chrome/126.0"},
                        incremental=incremental)
        engine.step([{"t": 0, "type": "team", "value": "online"}], 0)
        now = 0
        for _ in range(8):
            for label, events, dt in journey(rnd):
                if label == "wake":
                    wake = engine.next_wakeup()
                    if wake is None:
                        continue
                    now = wake
                    events = []
                else:
                    now += dt
                    events = [dict(e, t=now) for e in events]
                t0 = time.perf_counter()
                engine.step(events, now)
                timings.setdefault(label, []).append((time.perf_counter() - t0) * 1000)
    return timings


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-freeze", action="store_true", help="skip engine.settle_memory() after compiling")
    args = ap.parse_args()
    payload = make_payload(args.messages)
    t0 = time.perf_counter()
    parse(payload)
    compile_ms = (time.perf_counter() - t0) * 1000
    print(f"Python {sys.version.split()[0]}; {args.messages} messages x 10 conditions; compile {compile_ms:.1f} ms; "
          f"settle_memory {'off' if args.no_freeze else 'on'}")
    for incremental in (True, False):
        timings = run(payload, args.rounds, incremental, freeze=not args.no_freeze)
        all_times = [x for xs in timings.values() for x in xs]
        print(f"\n{'incremental' if incremental else 'full re-evaluation (for comparison)'}")
        print("| event | n | mean ms | median ms | p95 ms |")
        print("|---|---:|---:|---:|---:|")
        for label in sorted(timings, key=lambda k: -statistics.mean(timings[k])):
            xs = sorted(timings[label])
            print(f"| {label} | {len(xs)} | {statistics.mean(xs):.3f} | {statistics.median(xs):.3f} | {xs[int(0.95 * (len(xs) - 1))]:.3f} |")
        xs = sorted(all_times)
        print(f"| **all events** | {len(xs)} | {statistics.mean(xs):.3f} | {statistics.median(xs):.3f} | {xs[int(0.95 * (len(xs) - 1))]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
