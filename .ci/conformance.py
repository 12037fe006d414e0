#!/usr/bin/env python3
"""Conformance of the served API to its own OpenAPI document, checked by
tools others wrote (run by .ci/run; see docs/development.md).

1. Starts `nuanxin serve` on a free port and an empty store (a fresh SQLite
   file, or the empty PostgreSQL database given), with a bootstrap admin
   token; creates a caseworker and a family to test on.
2. Runs schemathesis against `/api/v1/openapi.json` twice (admin token, then
   caseworker token), every check on, positive-data acceptance included.
   Hooks (schemathesis_hooks.py) keep the few rules JSON Schema cannot state.
   Disabling a user and rotating a token are left out of those two runs
   (their stateful phase would feed the caller's own id from `GET /me` to
   them and revoke the very token the run uses) and run a third time on
   their own, as an admin of their own, on users made to be disabled.
3. Generates a Python client from the served document with
   openapi-python-client (warnings are errors) and runs the walk-through in
   client_walkthrough.py with it.

Exits non-zero on any failure. Usage:
    conformance.py --nuanxin target/debug/nuanxin [--database-url postgres://…]
                   [--max-examples N] [--work DIR]
"""

import argparse
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ADMIN_TOKEN = "ci-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, token, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def wait_ready(base, server, log):
    for _ in range(300):
        if server.poll() is not None:
            sys.exit(f"nuanxin serve exited early:\n{Path(log).read_text()}")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("nuanxin serve did not become ready in 60 s")


def local_today() -> datetime.date:
    """Today in the default policy's time zone (UTC+8)."""
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=8)).date()


def seed(base):
    """A caseworker and a family with contacts, a visit and an emergency
    contact, whose ids the schemathesis run may use."""
    cw = call(base, "POST", "/api/v1/users", ADMIN_TOKEN,
              {"name": "CI caseworker", "role": "caseworker", "scope": "45"})
    today = local_today()
    registered = today - datetime.timedelta(days=200)
    family = call(base, "POST", "/api/v1/families", cw["token"], {
        "category": "bereaved", "village_code": "450305001001", "address": "No. 3, Xincun",
        "registered_on": registered.isoformat(),
        "members": [
            {"name": "Zhang San", "sex": "male", "birth_date": "1950-03-01",
             "id_number": "110105195003010016", "phone": "13800138000"},
            {"name": "Li Mei", "sex": "female", "birth_date": "1952-07-15"},
        ],
    })["id"]
    for role in ("village", "township"):
        call(base, "POST", f"/api/v1/families/{family}/contacts", cw["token"], {
            "role": role,
            "person": {"id": "5f0c7c1e-7f3a-4c7e-9a4e-3b0a8d3f2c11", "name": "Li Si",
                       "phone": "13900139000"},
            "assigned_on": (registered + datetime.timedelta(days=1)).isoformat()})
    contact = call(base, "POST", f"/api/v1/families/{family}/emergency-contacts", cw["token"],
                   {"name": "Wang Xiaoming", "relation": "nephew", "phone": "13700137000",
                    "priority": 1})["action_id"]
    members = [m["id"] for m in call(base, "GET", f"/api/v1/families/{family}", cw["token"])["members"]]
    return cw["token"], family, members, contact


def seed_lifecycle(base):
    """An admin for the run of the user-lifecycle operations, and the users
    it may disable and give new tokens."""
    admin = call(base, "POST", "/api/v1/users", ADMIN_TOKEN,
                 {"name": "CI lifecycle admin", "role": "admin", "scope": "45"})
    victims = [call(base, "POST", "/api/v1/users", ADMIN_TOKEN,
                    {"name": f"CI user {i}", "role": "caseworker", "scope": "4503"})["id"]
               for i in range(3)]
    return admin["token"], victims


def lifecycle_config(path, victims):
    Path(path).write_text(f"""
[dictionaries.users]
values = {json.dumps(victims)}

[parameters]
id = {{ dictionary = "users", probability = 0.5 }}
""")


# Operations that revoke tokens: not in the runs with the seeded tokens.
LIFECYCLE = ("disable_user", "rotate_token")


def schemathesis_config(path, family, members, contact):
    """Real ids are offered for path parameters some of the time, so that
    generated requests reach the case rules, not only 'not found'."""
    Path(path).write_text(f"""
[dictionaries.families]
values = ["{family}"]
[dictionaries.members]
values = {json.dumps(members)}
[dictionaries.emergency_contacts]
values = ["{contact}"]

[parameters]
id = {{ dictionary = "families", probability = 0.5 }}
member_id = {{ dictionary = "members", probability = 0.5 }}
contact_id = {{ dictionary = "emergency_contacts", probability = 0.5 }}
""")


def run(cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run(cmd, **kw).returncode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nuanxin", required=True, help="the nuanxin binary")
    ap.add_argument("--database-url", help="an empty store (default: a fresh SQLite file)")
    ap.add_argument("--max-examples", type=int, default=60)
    ap.add_argument("--work", help="working directory (default: a temporary one)")
    args = ap.parse_args()
    bindir = Path(sys.executable).parent
    work = Path(args.work or tempfile.mkdtemp(prefix="nuanxin-conformance-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = work / "server.log"
    database_url = args.database_url or f"sqlite://{work / 'conformance.db'}"
    env = dict(os.environ, NUANXIN_BIND=f"127.0.0.1:{port}", DATABASE_URL=database_url,
               NUANXIN_BOOTSTRAP_TOKEN=ADMIN_TOKEN, NUANXIN_LOG="warn")
    for stale in work.glob("conformance.db*"):
        stale.unlink()
    # Run in the working directory: the checkpoint directory and signing
    # key the server creates beside it stay out of the checkout.
    server = subprocess.Popen([Path(args.nuanxin).resolve(), "serve"], env=env, cwd=work,
                              stdout=log.open("w"), stderr=subprocess.STDOUT)
    failures = []
    try:
        wait_ready(base, server, log)
        cw_token, family, members, contact = seed(base)
        config = work / "schemathesis.toml"
        schemathesis_config(config, family, members, contact)
        st_env = dict(os.environ, SCHEMATHESIS_HOOKS="schemathesis_hooks",
                      PYTHONPATH=str(HERE))
        lifecycle_token, victims = seed_lifecycle(base)
        lifecycle = work / "schemathesis-lifecycle.toml"
        lifecycle_config(lifecycle, victims)
        leave_out = [a for op in LIFECYCLE for a in ("--exclude-operation-id", op)]
        only = [a for op in LIFECYCLE for a in ("--include-operation-id", op)]
        for who, token, conf, ops in (("admin", ADMIN_TOKEN, config, leave_out),
                                      ("caseworker", cw_token, config, leave_out),
                                      ("lifecycle admin", lifecycle_token, lifecycle, only)):
            code = run([bindir / "st", "--config-file", conf, "run", f"{base}/api/v1/openapi.json",
                        *ops, "--checks", "all", "--max-examples", str(args.max_examples),
                        "--workers", "2", "--seed", "20261129", "--header", f"Authorization: Bearer {token}",
                        "--output-truncate", "true"], env=st_env)
            if code != 0:
                failures.append(f"schemathesis with the {who} token")
        # A client generated from the document, by a generator others wrote.
        spec = work / "openapi.json"
        with urllib.request.urlopen(base + "/api/v1/openapi.json") as r:
            spec.write_bytes(r.read())
        client_dir = work / "client"
        shutil.rmtree(client_dir, ignore_errors=True)
        code = run([bindir / "openapi-python-client", "generate", "--path", spec,
                    "--meta", "none", "--output-path", client_dir / "nuanxin_client",
                    "--config", HERE / "openapi-python-client.yaml", "--fail-on-warning"])
        if code != 0:
            failures.append("openapi-python-client generate")
        else:
            code = run([sys.executable, HERE / "client_walkthrough.py", base, ADMIN_TOKEN],
                       env=dict(os.environ, PYTHONPATH=str(client_dir)))
            if code != 0:
                failures.append("the walk-through through the generated client")
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    if server.returncode not in (0, -15):
        failures.append(f"nuanxin serve exited with {server.returncode}")
    if failures:
        print(f"server log: {log}\n" + log.read_text()[-4000:])
        sys.exit("conformance FAILED: " + "; ".join(failures))
    store = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
    print(f"conformance on {store}: schemathesis (admin, caseworker, lifecycle admin) green; "
          "generated client walk-through passed")


if __name__ == "__main__":
    main()
