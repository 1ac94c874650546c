#!/usr/bin/env python3
"""Drives careq's FHIR interface with fhirpy (a FHIR client from PyPI, not written here):
create, read, search with paging, conditional create, update with version; and checks that
the native API returns the same data for the same patients.

Usage: scripts/fhir_client_test.py BASE_URL ADMIN_PASSWORD   (BASE_URL like http://127.0.0.1:8080)
"""
import json
import sys
import urllib.request

from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound, OperationOutcome

MRN = "urn:careq:mrn"


def native_call(base, token, method, path, body=None):
    req = urllib.request.Request(base + path, method=method)
    req.add_header("authorization", f"Bearer {token}")
    data = None
    if body is not None:
        req.add_header("content-type", "application/json")
        data = json.dumps(body).encode()
    with urllib.request.urlopen(req, data) as res:
        return json.load(res)


def native_id(fhir_id):
    return fhir_id.replace("-", "_", 1)


def patient(clinic, family, given, mrn, phone="+43 664 7654321"):
    return {
        "identifier": [{"system": MRN, "value": mrn}],
        "name": [{"family": family, "given": [given]}],
        "gender": "female",
        "birthDate": "1984-06-30",
        "telecom": [{"system": "phone", "value": phone}],
        "managingOrganization": {"identifier": {"system": "urn:careq:clinic", "value": clinic}},
    }


def same_as_native(base, token, resource):
    """The native API's record of this patient says what the FHIR resource says."""
    n = native_call(base, token, "GET", f"/v1/patients/{native_id(resource['id'])}")
    checks = {
        "family_name": resource["name"][0]["family"],
        "given_name": " ".join(resource["name"][0]["given"]),
        "date_of_birth": resource["birthDate"],
        "sex": resource["gender"],
        "mrn": next(i["value"] for i in resource["identifier"] if i["system"] == MRN),
        "phone": next(t["value"] for t in resource["telecom"] if t["system"] == "phone"),
        "version": int(resource["meta"]["versionId"]),
    }
    for field, value in checks.items():
        assert n[field] == value, f"{field}: native {n[field]!r}, FHIR {value!r}"


def main(base, password):
    token = native_call_token(base, password)
    fhir = f"{base}/fhir/r4"
    auth = f"Bearer {token}"
    client = SyncFHIRClient(fhir, authorization=auth)
    clinic = native_call(base, token, "POST", "/v1/clinics",
                         {"name": "fhirpy", "timezone": "UTC", "ticket_prefix": "F"})["id"]

    # create
    amy = client.resource("Patient", **patient(clinic, "Fhirpy", "Amy", "FP-1"))
    amy.save()
    assert amy["id"].startswith("pat-") and amy["meta"]["versionId"] == "1", amy
    same_as_native(base, token, amy)
    print("create: ok", amy["id"])

    # read
    read = client.reference("Patient", amy["id"]).to_resource()
    assert read["name"][0]["family"] == "Fhirpy" and read["meta"]["versionId"] == "1"
    same_as_native(base, token, read)
    print("read: ok")

    # conditional create: one match answers it (200), none creates, several are refused (412)
    def conditional(condition):
        return SyncFHIRClient(fhir, authorization=auth,
                              extra_headers={"If-None-Exist": condition})
    again = conditional(f"identifier={MRN}|FP-1").resource(
        "Patient", **patient(clinic, "Fhirpy", "Amy", "FP-1"))
    again.save()
    assert again["id"] == amy["id"], (again["id"], amy["id"])
    rory = conditional(f"identifier={MRN}|FP-2").resource(
        "Patient", **patient(clinic, "Fhirpy", "Rory", "FP-2"))
    rory.save()
    assert rory["id"] != amy["id"]
    same_as_native(base, token, rory)
    try:
        conditional("family=fhirpy").resource(
            "Patient", **patient(clinic, "Fhirpy", "Clara", "FP-3")).save()
        raise AssertionError("an ambiguous If-None-Exist created a patient")
    except MultipleResourcesFound:
        pass
    print("conditional create: ok")

    # search with paging: fhirpy follows the Bundle's next links
    for i in range(5):
        client.resource("Patient", **patient(clinic, "Pagewalker", f"P{i}", f"PG-{i}")).save()
    search = client.resources("Patient").search(family="pagewalker").limit(2)
    first = search.fetch_raw()
    assert first["total"] == 5, first["total"]
    assert any(link["relation"] == "next" for link in first["link"])
    seen = [p["id"] for p in search]
    assert len(seen) == 5 and len(set(seen)) == 5, seen
    native = native_call(base, token, "GET", f"/v1/patients?q=pagewalker&clinic_id={clinic}&limit=200")
    assert sorted(native_id(i) for i in seen) == sorted(p["id"] for p in native["items"])
    print("search with paging: ok", len(seen), "patients over", (len(seen) + 1) // 2, "pages")

    # update with version: If-Match W/"1" → version 2; the same stale tag again → 412
    def versioned(tag):
        return SyncFHIRClient(fhir, authorization=auth, extra_headers={"If-Match": tag})
    current = versioned('W/"1"').reference("Patient", amy["id"]).to_resource()
    current["name"][0]["family"] = "Williams"
    current.save()
    assert current["meta"]["versionId"] == "2", current["meta"]
    same_as_native(base, token, current)
    stale = versioned('W/"1"').reference("Patient", amy["id"]).to_resource()
    stale["name"][0]["family"] = "Lost"
    try:
        stale.save()
        raise AssertionError("a stale If-Match was accepted")
    except MultipleResourcesFound:  # fhirpy's name for any 412
        pass
    unversioned = client.reference("Patient", amy["id"]).to_resource()
    try:
        unversioned.save()
        raise AssertionError("an update without If-Match was accepted")
    except OperationOutcome as e:
        assert "428" in str(e), e
    final = native_call(base, token, "GET", f"/v1/patients/{native_id(amy['id'])}")
    assert final["family_name"] == "Williams" and final["version"] == 2, final
    print("update with version: ok")
    return 0


def native_call_token(base, password):
    req = urllib.request.Request(base + "/v1/auth/token", method="POST")
    req.add_header("content-type", "application/json")
    body = json.dumps({"username": "admin", "password": password}).encode()
    with urllib.request.urlopen(req, body) as res:
        return json.load(res)["access_token"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
