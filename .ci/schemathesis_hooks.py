"""Schemathesis hooks for the Nuanxin conformance run (loaded through
SCHEMATHESIS_HOOKS by .ci/conformance).

The OpenAPI document states every rule JSON Schema can state, and the
server refuses anything outside it with 400/422. A few rules are not
expressible in JSON Schema; a schema-valid ("positive") request that breaks
one is rightly refused with 422, which schemathesis' positive-data check
would count as a failure. These hooks make generated positive requests keep
those rules too — and nothing else is changed, so every other property of the
generated data is tested as generated:

- an ID number (`members[].id_number`) ends in its GB 11643 check character
  and names the member's `birth_date` (digits 7-14) and `sex` (the 17th
  digit is odd for men, even for women);
- a member is born at least 16 years before `registered_on`;
- an elderly-care `to` is not before its `from`; a claim's `filed_on` is not
  before its `occurred_on`; the bulletin's and the report's `to` is not
  before its `from` and at most ten years after it;
- a claim decision carries `paid_fen` (at least 1) when `paid` and `reason`
  when `rejected`, and not the other;
- an inspection names a jurisdiction below the province unless it says who
  inspected, and its `inspected_by` (when given) is a level above it;
- an `Idempotency-Key` is reused only with the same body (the contract
  answers 422 to a reuse with another body): positive requests get a fresh
  key of the same form.

Negative requests are left alone.
"""

import datetime
import uuid
from collections.abc import MutableMapping

import schemathesis
from schemathesis.generation.modes import GenerationMode

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"


def id_number(region: str, birth: datetime.date, sequence: str, male: bool) -> str:
    """An ID number by the rules of GB 11643."""
    last = int(sequence[2])
    if (last % 2 == 1) != male:
        last = (last + 1) % 10
    body = f"{region}{birth:%Y%m%d}{sequence[:2]}{last}"
    return body + CHECK[sum(int(d) * w for d, w in zip(body, WEIGHTS)) % 11]


def years_before(day: datetime.date, years: int) -> datetime.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def is_positive(case) -> bool:
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode == GenerationMode.POSITIVE


def day(value):
    try:
        return datetime.date.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def keep_family_rules(body: dict) -> None:
    registered = day(body.get("registered_on"))
    members = body.get("members")
    if registered is None or not isinstance(members, list):
        return
    latest_birth = years_before(registered, 16)
    for member in members:
        if not isinstance(member, dict):
            continue
        birth = day(member.get("birth_date"))
        if birth is None:
            continue
        if birth > latest_birth:
            birth = latest_birth
            member["birth_date"] = birth.isoformat()
        number = member.get("id_number")
        if isinstance(number, str) and len(number) == 18:
            member["id_number"] = id_number(
                number[:6], birth, number[14:17], member.get("sex") == "male"
            )


def keep_decision_rules(body: dict) -> None:
    if body.get("outcome") == "paid":
        body.pop("reason", None)
        paid = body.get("paid_fen")
        if not isinstance(paid, int) or paid < 1:
            body["paid_fen"] = 1
    elif body.get("outcome") == "rejected":
        body.pop("paid_fen", None)
        if not isinstance(body.get("reason"), str):
            body["reason"] = "not covered"


def keep_inspection_rules(body: dict) -> None:
    jurisdiction = body.get("jurisdiction")
    if not isinstance(jurisdiction, str):
        return
    by = body.get("inspected_by")
    if isinstance(by, str) and not (len(by) < len(jurisdiction) and jurisdiction.startswith(by)):
        body.pop("inspected_by")
        by = None
    if len(jurisdiction) == 2 and by is None:
        body["jurisdiction"] = jurisdiction + "01"


@schemathesis.hook
def map_case(context, case):
    if not is_positive(case):
        return case
    path = case.operation.path
    body = case.body
    if isinstance(body, dict):
        if path == "/api/v1/families" and case.method.upper() == "POST":
            keep_family_rules(body)
        elif path.endswith("/elderly-care"):
            start, end = day(body.get("from")), day(body.get("to"))
            if start and end and end < start:
                body["to"] = body["from"]
        elif path.endswith("/insurance/claims"):
            occurred, filed = day(body.get("occurred_on")), day(body.get("filed_on"))
            if occurred and filed and filed < occurred:
                body["filed_on"] = body["occurred_on"]
        elif path.endswith("/decision"):
            keep_decision_rules(body)
        elif path == "/api/v1/inspections" and case.method.upper() == "POST":
            keep_inspection_rules(body)
    query = case.query
    if path in ("/api/v1/bulletin/figures", "/api/v1/reports/summary") and isinstance(
        query, MutableMapping
    ):
        # Absent: from 1 January of this year (UTC+8) to today.
        today = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=8)).date()
        start = day(query.get("from")) or today.replace(month=1, day=1)
        end = day(query.get("to")) or today
        if not (start <= end <= start + datetime.timedelta(days=3650)):
            query["from"] = start.isoformat()
            query["to"] = start.isoformat()
    headers = case.headers
    if isinstance(headers, MutableMapping):
        for name in list(headers):
            if name.lower() == "idempotency-key":
                headers[name] = uuid.uuid4().hex
    return case
