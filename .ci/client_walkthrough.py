#!/usr/bin/env python3
"""The README walk-through, through a client generated from our OpenAPI
document by openapi-python-client (run by .ci/conformance.py, which puts the
generated package `nuanxin_client` on PYTHONPATH).

Registers a family, assigns its village contact, records a visit, reads the
case file and the overdue list — and fails on any mismatch: an answer whose
status the document does not list raises (raise_on_unexpected_status), an
answer of the wrong shape does not parse, every answer must survive a round
trip through its generated model unchanged (so no field is undocumented or
mistyped), and the values must be the ones the walk-through recorded.

Usage: client_walkthrough.py BASE_URL ADMIN_TOKEN
"""

import datetime
import json
import sys
import uuid

from nuanxin_client import AuthenticatedClient
from nuanxin_client.api.families import assign_contact, case_file, record_visit, register
from nuanxin_client.api.schedule import overdue_visits
from nuanxin_client.api.users import create_user, me
from nuanxin_client.models import (
    AssignContactRequest,
    CaseFileView,
    Category,
    CommandResponse,
    CreatedUser,
    CreateUserRequest,
    DueList,
    MemberRequest,
    PersonRequest,
    Problem,
    RegisterFamilyRequest,
    Role,
    Sex,
    UserRole,
    UserView,
    VisitMode,
    VisitRequest,
)

failures = []


def check(what, ok):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def round_trips(response, parsed, name):
    """The answer, parsed by the generated model and written back, is the
    answer: every field is documented, with its type (a field the document
    does not name would be dropped, a wrong type would not parse)."""
    sent = json.loads(response.content)
    back = parsed.to_dict()
    check(f"{name}: the answer is exactly the documented model", sent == back)
    if sent != back:
        print(f"     served:   {sent}\n     as model: {back}")


def answer(response, expected_type, status, what):
    check(f"{what}: {status}", response.status_code == status)
    parsed = response.parsed
    if isinstance(parsed, Problem):
        print(f"     problem: {parsed.detail}")
    check(f"{what}: parses as {expected_type.__name__}", isinstance(parsed, expected_type))
    if isinstance(parsed, expected_type):
        round_trips(response, parsed, expected_type.__name__)
    return parsed


def main(base, admin_token):
    admin = AuthenticatedClient(base_url=base, token=admin_token, raise_on_unexpected_status=True)
    who = answer(me.sync_detailed(client=admin), UserView, 200, "GET /me")
    check("the bootstrap admin is an admin", who is not None and who.role == UserRole.ADMIN)

    created = answer(
        create_user.sync_detailed(client=admin, body=CreateUserRequest(
            name="Wang Fang", role=UserRole.CASEWORKER, scope="450305")),
        CreatedUser, 201, "POST /users")
    cw = AuthenticatedClient(base_url=base, token=created.token, raise_on_unexpected_status=True)

    # Dates relative to today in the policy's time zone (UTC+8).
    today = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=8)).date()
    registered, assigned, visited = (today - datetime.timedelta(days=d) for d in (90, 60, 40))

    family = answer(
        register.sync_detailed(client=cw, idempotency_key=str(uuid.uuid4()), body=RegisterFamilyRequest(
            category=Category.BEREAVED, village_code="450305001001", address="No. 3, Xincun",
            registered_on=registered,
            members=[MemberRequest(name="Zhang San", sex=Sex.MALE,
                                   birth_date=datetime.date(1950, 3, 1),
                                   id_number="110105195003010016", phone="13800138000")])),
        CommandResponse, 201, "POST /families")
    check("registration is version 1", family.version == 1)

    contact_id = uuid.uuid4()
    assigned_answer = answer(
        assign_contact.sync_detailed(family.id, client=cw, if_match=str(family.version),
                                     body=AssignContactRequest(
                                         role=Role.VILLAGE,
                                         person=PersonRequest(id=str(contact_id), name="Li Si",
                                                              phone="13900139000"),
                                         assigned_on=assigned)),
        CommandResponse, 200, "POST /families/{id}/contacts")
    check("the contact moved the case to version 2", assigned_answer.version == 2)

    visit = answer(
        record_visit.sync_detailed(family.id, client=cw, body=VisitRequest(
            role=Role.VILLAGE, mode=VisitMode.HOME, visited_on=visited, findings="well",
            needs=["wheelchair"])),
        CommandResponse, 201, "POST /families/{id}/visits")

    view = answer(case_file.sync_detailed(family.id, client=cw), CaseFileView, 200,
                  "GET /families/{id}")
    check("the case file holds the contact",
          view.contacts.village is not None and view.contacts.village.person.id == contact_id)
    check("the case file holds the visit", view.visits.village.last_on == visited)
    check("the next village visit is due 30 days later",
          view.visits.village.next_due_on == visited + datetime.timedelta(days=30))
    check("the ID number is masked",
          view.members[0].id_number_masked == "110105********0016")
    check("the case is at the visit's version", view.version == visit.version)

    overdue = answer(overdue_visits.sync_detailed(client=cw, role=Role.VILLAGE), DueList, 200,
                     "GET /overdue-visits")
    mine = [i for i in overdue.items if i.family_id == family.id]
    check("the family is on the overdue list once", len(mine) == 1)
    if mine:
        item = mine[0]
        due = visited + datetime.timedelta(days=30)
        check("it is due 30 days after the visit", item.due_on == due)
        check("days overdue count from the due day", item.days_overdue == (today - due).days)
        check("the item names the contact", item.contact.id == contact_id and item.contact.name == "Li Si")
        check("the item is marked overdue", item.overdue)

    # A refusal is a documented problem, parsed as one.
    refused = case_file.sync_detailed(uuid.uuid4(), client=cw)
    check("an unknown family is 404 problem+json",
          refused.status_code == 404 and isinstance(refused.parsed, Problem))

    if failures:
        sys.exit(f"{len(failures)} mismatch(es): " + "; ".join(failures))
    print("generated-client walk-through: all checks passed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
