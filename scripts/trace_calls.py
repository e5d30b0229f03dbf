"""Which of labelfarm's source files run during one warm ``next`` and one ``submit`` call.

    python scripts/trace_calls.py [sqlite|postgresql] [--gold]

Builds a fresh instance (the CLI creates the administrator and a token; the rest goes
through the HTTP API in-process), leases and submits twice to warm every cache, then lists
the files, and the functions in each, entered during the third ``next`` and ``submit``. A
way to see the path a call takes, and to notice when it starts wandering. PostgreSQL uses a
scratch database on the server at ``--pg`` (default ``host=127.0.0.1 user=postgres``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from types import FrameType
from typing import Any

SCHEMA = {"fields": [{"name": "label", "type": "choice", "options": ["a", "b"]}]}


def _instance(backend: str, pg: str, tmp: Path) -> tuple[dict[str, str], str | None]:
    env = dict(os.environ, LABELFARM_DATA_DIR=str(tmp), LABELFARM_SECRET_KEY="trace")
    scratch = None
    if backend == "postgresql":
        import psycopg

        scratch = f"trace_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{pg} dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{scratch}"')
        host = dict(part.split("=") for part in pg.split())
        env["LABELFARM_DATABASE_URL"] = (
            f"postgresql+psycopg://{host.get('user', 'postgres')}@{host.get('host', '127.0.0.1')}"
            f":{host.get('port', '5432')}/{scratch}"
        )
    cli = [sys.executable, "-m", "labelfarm.cli"]
    init = ["init", "--admin-username", "admin", "--admin-password", "trace-password"]
    subprocess.run(cli + init, env=env, check=True, capture_output=True)
    made = subprocess.run(
        [*cli, "token", "create", "--user", "admin"], env=env, check=True, capture_output=True
    )
    env["TRACE_TOKEN"] = made.stdout.decode().strip().splitlines()[-1]
    return env, scratch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("backend", nargs="?", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--gold", action="store_true", help="a project with gold and a floor")
    parser.add_argument("--pg", default="host=127.0.0.1 user=postgres")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="labelfarm-trace-"))
    env, scratch = _instance(args.backend, args.pg, tmp)
    os.environ.update(env)
    try:
        _trace(tmp, env["TRACE_TOKEN"], args.gold)
    finally:
        if scratch:
            import psycopg

            with psycopg.connect(f"{args.pg} dbname=postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def _trace(tmp: Path, token: str, gold: bool) -> None:
    import labelfarm

    src = str(Path(labelfarm.__file__).parent) + os.sep
    seen: dict[str, set[str]] = {}
    active = [False]

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        name = frame.f_code.co_filename
        if active[0] and event == "call" and name.startswith(src):
            seen.setdefault(name[len(src) :], set()).add(frame.f_code.co_name)

    threading.setprofile(profile)  # before the app starts any thread
    sys.setprofile(profile)
    from labelfarm.client import AppTransport, Client
    from labelfarm.settings import Settings
    from labelfarm.web.app import create_app

    transport = AppTransport(create_app(Settings()))
    lf = Client("http://trace", token=token, transport=transport)
    ws = lf.create_workspace("trace", "Trace")
    extra = {"gold_rate": 0.5, "accuracy_floor": 0.5} if gold else {}
    project = lf.create_project(ws["id"], "p", overlap=2, schema=SCHEMA, **extra)
    lines = [f'{{"data": {{"text": "t{i}"}}}}' for i in range(50)]
    lines += [f'{{"data": {{"text": "g{i}"}}, "gold": {{"label": "a"}}}}' for i in range(20 * gold)]
    (tmp / "items.jsonl").write_text("\n".join(lines) + "\n")
    lf.import_file(project["id"], str(tmp / "items.jsonl"))
    found: dict[str, dict[str, set[str]]] = {}
    for round_ in range(3):
        active[0] = round_ == 2
        seen.clear()
        tasks = lf.next(project["id"], n=2)
        found["next"] = dict(seen)
        seen.clear()
        entries = [
            {"id": uuid.uuid4().hex, "item_id": t["item_id"], "value": {"label": "a"}}
            for t in tasks
        ]
        lf.submit(project["id"], entries)
        found["submit"] = dict(seen)
    active[0] = False
    transport.close()
    for call, files in found.items():
        files.pop("client.py", None)  # the SDK making the call
        print(f"{call}: {len(files)} files")
        for name in sorted(files):
            print(f"  {name}: {', '.join(sorted(files[name]))}")


if __name__ == "__main__":
    main()
