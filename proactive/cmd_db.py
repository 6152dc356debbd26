"""`proactive db upgrade` / `proactive db status`: the endpoint's schema
migrations (server_stub/migrations/), run alone, e.g. before starting a new
release's processes. `proactive serve` applies them at start too."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from proactive.cmd_serve import ROOT, database_of


def add_arguments(p) -> None:
    p.add_argument("action", choices=("upgrade", "status"),
                   help="upgrade: apply the migrations the database lacks; status: print its schema version")
    p.add_argument("--db", default=os.environ.get("PROACTIVE_DB") or None, metavar="FILE|URL",
                   help="a SQLite file or a postgresql:// URL (default: $PROACTIVE_DB, else DATA/endpoint.db)")
    p.add_argument("--data", type=Path, default=ROOT / ".data", help="where DATA/endpoint.db is")


def run(args) -> int:
    from server_stub.storage import StoreError, latest_version, open_store

    try:
        store = open_store(database_of(args), upgrade=args.action == "upgrade")
    except StoreError as exc:
        print(f"proactive db: {exc}", file=sys.stderr)
        return 1
    try:
        latest = latest_version(store.dialect)
        state = "up to date" if store.schema_version == latest else f"{latest - store.schema_version} to apply"
        print(f"{store.path}: schema version {store.schema_version} of {latest} ({state})")
    finally:
        store.close()
    return 0
