"""Schemathesis hooks for test/openapi-fuzz.test.ts (loaded through SCHEMATHESIS_HOOKS).

They change only requests Schemathesis means to be valid, where the document allows what only
the deployment can judge, so that positive_data_acceptance judges the rest of the request:

- A list cursor is authenticated (src/api/temporal/list-cursor.ts): only a value the API issued as `nextCursor`
  is valid, and JSON Schema can say its alphabet but not its MAC. A made-up one is dropped.
- Whether a callback may go to a literal IP address is the destination policy's to say
  (ASYNCQUEUE_ALLOW_PRIVATE_NETWORKS, ASYNCQUEUE_ALLOWED_DESTINATIONS), and this run sends nothing
  off loopback. Such a host becomes a name, which the run's guard resolves to 127.0.0.1.

- `?wait=N` answers after N seconds when the task has not ended, and no task ends in this run (it
  has no worker): a valid wait becomes 1 s, so that the response-time check judges the rest.
- A schedule's `cron` and `timezone` are checked against a cron grammar and the IANA time-zone
  database, which JSON Schema cannot hold, and exactly one of `cron` and `every` is allowed: a valid
  schedule gets a real cron (or `every`) and UTC, and is created paused (no worker runs its tasks).

Made-up cursors and addresses in requests meant to be invalid stay, and must be refused; tampered
cursors and special addresses are test/api-property.test.ts's to send.
"""

import re

import schemathesis

# The document's URL pattern admits dotted-quad IPv4 and [IPv6] hosts as addresses, every other
# host as a name.
LITERAL_HOST = re.compile(r"^(https?://)(\[[^\]/?#]*\]|[0-9.]+)(?=[:/?]|$)", re.IGNORECASE)


def _positive(case):
    return case.meta is not None and case.meta.generation.mode.is_positive


@schemathesis.hook
def map_case(context, case):
    # Any phase, examples included: a wait of 2–60 s becomes 1 s, valid as it was.
    if isinstance(case.query, dict) and re.fullmatch(r"[2-9]|[1-5][0-9]|60", str(case.query.get("wait"))):
        case.query["wait"] = 1
    if not _positive(case):
        return case
    method = case.method.upper()
    if method == "GET" and case.path in ("/v1/tasks", "/v1/flow-control", "/v1/schedules") and isinstance(case.query, dict):
        case.query.pop("cursor", None)
    if method == "POST" and case.path == "/v1/tasks" and isinstance(case.body, dict):
        _literal_hosts(case.body)
    if method == "POST" and case.path == "/v1/schedules" and isinstance(case.body, dict):
        body = case.body
        if "cron" in body:
            body.pop("every", None)
            body["cron"] = "0 3 * * *"
        elif "every" not in body:
            body["every"] = 3600
        if "timezone" in body:
            body["timezone"] = "UTC"
        body["paused"] = True
        if isinstance(body.get("task"), dict):
            _literal_hosts(body["task"])
    return case


def _literal_hosts(body):
    for field in ("callbackUrl", "webhookUrl"):
        url = body.get(field)
        if isinstance(url, str):
            body[field] = LITERAL_HOST.sub(r"\1ip-literal.example", url, count=1)
