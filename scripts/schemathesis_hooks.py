"""schemathesis hooks for careq's conformance step (scripts/schemathesis.sh, README "Conformance")."""
import schemathesis


@schemathesis.hook
def filter_failure(context, failure, case, response):
    # A deleted patient's access log stays readable (200): the audit trail outlives the record and
    # says who deleted it. `use_after_free` reads that as a failure, and its per-operation switch
    # in schemathesis.toml is not applied in the stateful phase, so it is dropped here, for this
    # one operation and this one check.
    return not (
        failure.code == "ST301" and case.operation.label == "GET /v1/patients/{id}/access-log"
    )
