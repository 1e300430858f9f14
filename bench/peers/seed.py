#!/usr/bin/env python3
"""Seed a SCIM server over its own POST /Users with the users bench/scim's scripts look up.

  seed.py BASE_URL TOKEN USERS IDS_OUT [--workers 8]

User i is `user{i:07d}@bench.example` (externalId E{i:07d}), as `bench/scim/run.sh` seeds
rollcall from its HR file, so get_filter.lua finds the same names everywhere. Writes the new
ids to IDS_OUT (one a line, for patch.lua) and prints the seconds it took. Standard library only;
reconnects when a server closes the connection after each answer (HTTP/1.0 servers do).
"""
import argparse, http.client, json, sys, threading, time, urllib.parse
from concurrent.futures import ThreadPoolExecutor

local = threading.local()


def body(i):
    name = f"user{i:07d}@bench.example"
    return json.dumps({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": f"E{i:07d}", "userName": name, "active": True,
        "name": {"givenName": f"Given{i}", "familyName": f"Family{i}"},
        "emails": [{"primary": True, "type": "work", "value": name}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Bench"},
    })


def post(url, token, i):
    for attempt in range(3):
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        try:
            conn.request("POST", url.path.rstrip("/") + "/Users", body=body(i), headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"})
            r = conn.getresponse()
            raw = r.read()
            if r.will_close:
                conn.close()
                local.conn = None
            if r.status != 201:
                raise RuntimeError(f"POST user {i}: {r.status} {raw[:200]!r}")
            return json.loads(raw)["id"]
        except (http.client.HTTPException, ConnectionError):
            conn.close()
            local.conn = None
            if attempt == 2:
                raise


def main():
    p = argparse.ArgumentParser()
    p.add_argument("base")
    p.add_argument("token")
    p.add_argument("users", type=int)
    p.add_argument("ids_out")
    p.add_argument("--workers", type=int, default=8)
    a = p.parse_args()
    url = urllib.parse.urlsplit(a.base)
    started = time.monotonic()
    with ThreadPoolExecutor(a.workers) as pool:
        ids = list(pool.map(lambda i: post(url, a.token, i), range(1, a.users + 1)))
    with open(a.ids_out, "w") as f:
        f.write("\n".join(ids) + "\n")
    print(f"{time.monotonic() - started:.1f}")


if __name__ == "__main__":
    sys.exit(main())
