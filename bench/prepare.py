#!/usr/bin/env python3
"""Turns `careq bench-seed`'s JSON into the Lua table the wrk scripts load: signs in as the
bench user, fetches current ETags (a sample of patients, the small clinic's queue) over HTTP.

Usage: prepare.py SEED_JSON BASE_URL OUT_LUA
"""
import json
import sys
import urllib.request

ETAGS = 200


def call(base, path, token=None, body=None):
    req = urllib.request.Request(base + path, method="POST" if body is not None else "GET")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if body is not None:
        req.add_header("Content-Type", "application/json")
        req.data = json.dumps(body).encode()
    with urllib.request.urlopen(req, timeout=30) as res:
        return res.headers, json.load(res)


def lua_list(values):
    return "{" + ",".join(json.dumps(v) for v in values) + "}"


def main():
    seed_path, base, out = sys.argv[1:4]
    with open(seed_path) as f:
        seed = json.load(f)
    _, grant = call(base, "/v1/auth/token", body={"username": seed["username"], "password": seed["password"]})
    token = grant["access_token"]
    sample = seed["sample"]
    etags = [call(base, "/v1/patients/" + p["id"], token)[0]["ETag"] for p in sample[:ETAGS]]
    queue_etag = call(base, "/v1/clinics/%s/queue" % seed["small_clinic"], token)[0]["ETag"]
    with open(out, "w") as f:
        f.write("return {\n")
        f.write("  token = %s,\n" % json.dumps(token))
        f.write("  big = %s,\n  small = %s,\n" % (json.dumps(seed["big_clinic"]), json.dumps(seed["small_clinic"])))
        for key, field in [("ids", "id"), ("mrns", "mrn"), ("dobs", "date_of_birth"), ("prefixes", "prefix")]:
            f.write("  %s = %s,\n" % (key, lua_list(p[field] for p in sample)))
        f.write("  etags = %s,\n" % lua_list(etags))
        f.write("  queue_etag = %s,\n" % json.dumps(queue_etag))
        f.write("}\n")
    print(token)


if __name__ == "__main__":
    main()
