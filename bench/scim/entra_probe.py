#!/usr/bin/env python3
"""Send a SCIM server the requests Microsoft Entra ID sends, and say which it handles.

  entra_probe.py BASE_URL TOKEN [--json FILE]      (BASE_URL e.g. http://127.0.0.1:8080/scim/v2)

Each check creates what it needs through POST (names unique to the run) and looks at the
answer the way Entra would: the status code and, where a change was asked, the user read back.
Prints one line per check; with --json, writes [{name, request, ok, status, detail}, ...].
Standard library only. The requests follow Entra's documented provisioning behaviour: its
connection test (a filter on a random userName), lookups by userName in another letter case
and by externalId, PATCH with capitalised ops and string booleans ("False"/"True"), the
enterprise manager as a bare id, a value-filtered email path, Remove, and DELETE.
"""
import argparse, json, urllib.error, urllib.parse, urllib.request, uuid

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class Client:
    def __init__(self, base, token):
        self.base, self.token = base.rstrip("/"), token

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/scim+json",
            "Accept": "application/scim+json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw.strip() else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")[:200]


def entra_user(tag):
    name = f"probe-{tag}@probe.example"
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": f"probe-ext-{tag}", "userName": name, "active": True,
        "displayName": f"Probe {tag}",
        "name": {"givenName": "Probe", "familyName": tag, "formatted": f"Probe {tag}"},
        "emails": [{"primary": True, "type": "work", "value": name}],
        ENTERPRISE: {"department": "Probe", "employeeNumber": f"P{tag}"},
    }


def patch(ops):
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}


def short(body):
    if isinstance(body, dict):
        body = body.get("detail") or body.get("scimType") or body
    return " ".join(str(body).split())[:160]


def probe(c):
    run = uuid.uuid4().hex[:10]
    results = []

    def check(name, request, fn):
        try:
            ok, status, detail = fn()
        except Exception as e:  # a crash of the check is a failure of the server's answer
            ok, status, detail = False, None, f"{type(e).__name__}: {e}"
        results.append({"name": name, "request": request, "ok": ok, "status": status,
                        "detail": detail})
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {status} {detail}", flush=True)

    users = {}

    def create():
        status, body = c.call("POST", "/Users", entra_user(run))
        if status == 201 and isinstance(body, dict) and body.get("id"):
            users["a"] = body
            return True, status, "created"
        return False, status, short(body)

    check("create", "POST /Users with the enterprise extension", create)
    if "a" not in users:
        return results
    uid, uname = users["a"]["id"], users["a"]["userName"]
    status, other = c.call("POST", "/Users", entra_user(run + "-manager"))
    manager_id = other.get("id") if isinstance(other, dict) else None

    def read():
        return c.call("GET", f"/Users/{uid}")

    def lookup(filter_, want):
        def fn():
            q = urllib.parse.quote(filter_)
            status, body = c.call("GET", f"/Users?filter={q}")
            if status != 200 or not isinstance(body, dict):
                return False, status, short(body)
            found = [r.get("id") for r in body.get("Resources") or []]
            ok = body.get("totalResults") == len(want) and found == want
            return ok, status, f"totalResults {body.get('totalResults')}" + ("" if ok else f", wanted {len(want)}")
        return fn

    check("test_connection", 'GET /Users?filter=userName eq "<random>" → 200, empty list',
          lookup(f'userName eq "{uuid.uuid4()}"', []))
    check("filter_username_other_case", 'GET /Users?filter=userName eq "<USERNAME IN UPPER CASE>"',
          lookup(f'userName eq "{uname.upper()}"', [uid]))
    check("filter_external_id", 'GET /Users?filter=externalId eq "..."',
          lookup(f'externalId eq "probe-ext-{run}"', [uid]))

    def patched(ops, expect):
        def fn():
            status, body = c.call("PATCH", f"/Users/{uid}", patch(ops))
            if status not in (200, 204):
                return False, status, short(body)
            rstatus, user = read()
            if rstatus != 200 or not isinstance(user, dict):
                return False, status, f"read back: {rstatus}"
            ok, what = expect(user)
            return ok, status, what
        return fn

    check("patch_active_string_false", '{"op":"Replace","path":"active","value":"False"}',
          patched([{"op": "Replace", "path": "active", "value": "False"}],
                  lambda u: (u.get("active") is False, f"active read back: {json.dumps(u.get('active'))}")))
    check("patch_active_string_true", '{"op":"Replace","path":"active","value":"True"}',
          patched([{"op": "Replace", "path": "active", "value": "True"}],
                  lambda u: (u.get("active") is True, f"active read back: {json.dumps(u.get('active'))}")))
    check("patch_add_capitalised", '{"op":"Add","path":"title","value":"Probe title"}',
          patched([{"op": "Add", "path": "title", "value": "Probe title"}],
                  lambda u: (u.get("title") == "Probe title", f"title read back: {u.get('title')!r}")))
    new_mail = f"probe-new-{run}@probe.example"
    check("patch_email_value_filter", '{"op":"Replace","path":"emails[type eq \\"work\\"].value","value":"..."}',
          patched([{"op": "Replace", "path": 'emails[type eq "work"].value', "value": new_mail}],
                  lambda u: (any(e.get("value") == new_mail for e in u.get("emails") or []),
                             f"emails read back: {[e.get('value') for e in u.get('emails') or []]}")))
    mgr = lambda u: ((u.get(ENTERPRISE) or {}).get("manager") or {})
    check("patch_manager_bare_id", f'{{"op":"Add","path":"{ENTERPRISE}:manager","value":"<id>"}}',
          patched([{"op": "Add", "path": f"{ENTERPRISE}:manager", "value": manager_id}],
                  lambda u: (isinstance(mgr(u), dict) and mgr(u).get("value") == manager_id,
                             f"manager read back: {json.dumps(mgr(u))}")))
    check("patch_remove_manager", f'{{"op":"Remove","path":"{ENTERPRISE}:manager"}}',
          patched([{"op": "Remove", "path": f"{ENTERPRISE}:manager"}],
                  lambda u: (not mgr(u), f"manager read back: {json.dumps(mgr(u))}")))

    def delete():
        status, body = c.call("DELETE", f"/Users/{uid}")
        if status != 204:
            return False, status, short(body)
        again, _ = read()
        return again == 404, status, f"GET after DELETE: {again}"

    check("delete_then_404", "DELETE /Users/{id}, then GET → 404", delete)
    return results


def main():
    p = argparse.ArgumentParser()
    p.add_argument("base")
    p.add_argument("token")
    p.add_argument("--json")
    a = p.parse_args()
    results = probe(Client(a.base, a.token))
    failed = [r["name"] for r in results if not r["ok"]]
    print(f"  {len(results) - len(failed)} handled, {len(failed)} refused or wrong")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
