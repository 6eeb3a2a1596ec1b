# ruff: noqa: F811 - the fixtures imported from tests/web/casework.py are parameters
"""The JSON API through the Flask client, on SQLite and PostgreSQL: the happy path, every
error shape, personal tokens, the session with CSRF, and the OpenAPI document."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate
from sqlalchemy import func, select

from engine import instances
from engine import tokens as engine_tokens
from engine.db import unit_of_work
from engine.identity import get_user
from engine.models import AuditEvent, HumanTask, ProcessInstance
from tests.factories import VALID_CHILD
from tests.web.casework import (  # noqa: F401 - fixtures
    GIRL_IIN,
    api,
    api_app,
    api_client,
    api_world,
    db_sessions,
)


def start_intake(api, user="aigul"):
    reply = api(user).post("/procedures/test_intake/start", {})
    assert reply.status_code == 201, reply.json
    return reply.json


def error_of(reply, status):
    assert reply.status_code == status, reply.json
    assert reply.is_json
    body = reply.json["error"]
    assert set(body) == {"code", "message", "fields"}
    return body


def snapshot(db_sessions, instance_id):
    with unit_of_work(db_sessions) as s:
        inst = s.get(ProcessInstance, instance_id)
        rows = s.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id)).all()
        events = s.scalar(select(func.count()).select_from(AuditEvent))
        return (
            inst.revision,
            inst.state_json,
            sorted((r.id, r.status, r.assignee_id) for r in rows),
            events,
        )


# --- the happy path ---------------------------------------------------------------------


def test_start_claim_release_complete_through_to_the_end(api, db_sessions):
    listed = api("aigul").get("/procedures").json["procedures"]
    assert "test_intake" in {p["process_key"] for p in listed}
    # The lawyer may not start the specialists' intake, so it is not offered to her.
    assert "test_intake" not in {
        p["process_key"] for p in api("maria").get("/procedures").json["procedures"]
    }

    started = start_intake(api)
    [task] = started["ready_tasks"]
    assert task["bpmn_id"] == "register"
    assert [t["id"] for t in api("aigul").get("/inbox").json["tasks"]] == [task["id"]]

    detail = api("aigul").get(f"/tasks/{task['id']}").json
    assert detail["actions"] == ["claim", "complete"]
    assert detail["form"]["required"] == ["child_name", "child_age", "child_iin"]
    assert detail["revision"] == started["revision"]

    claimed = api("aigul").post(f"/tasks/{task['id']}/claim", {"revision": detail["revision"]})
    assert claimed.status_code == 200 and claimed.json["assignee_id"] is not None
    assert api("aigul").get(f"/tasks/{task['id']}").json["actions"] == ["complete", "release"]
    released = api("aigul").post(f"/tasks/{task['id']}/release")
    assert released.status_code == 200 and released.json["assignee_id"] is None

    done = api("aigul").post(f"/tasks/{task['id']}/complete", {"data": VALID_CHILD})
    assert done.status_code == 200, done.json
    assert done.json["task"]["status"] == "completed"
    [legal] = done.json["instance"]["ready_tasks"]
    assert legal["bpmn_id"] == "legal_check"
    assert [t["id"] for t in api("maria").get("/inbox").json["tasks"]] == [legal["id"]]
    assert api("aigul").get("/inbox").json["tasks"] == []

    final = api("maria").post(f"/tasks/{legal['id']}/complete", {"data": {"opinion": "approve"}})
    assert final.json["instance"]["status"] == "completed"
    with unit_of_work(db_sessions) as s:
        data = instances.instance_data(s, instance_id=started["id"])
    assert data["eligible"] is True


# --- every error shape ------------------------------------------------------------------


def test_401_without_a_token_with_a_wrong_one_or_another_scheme(api, api_client):
    client = api_client
    assert error_of(api(None).get("/inbox"), 401)["code"] == "unauthorized"
    assert error_of(api(None).post("/procedures/test_intake/start"), 401)
    wrong = client.get("/api/v1/inbox", headers={"Authorization": "Bearer qg_not-a-token"})
    assert error_of(wrong, 401)["message"] == "the token is unknown or revoked"
    basic = client.get("/api/v1/inbox", headers={"Authorization": "Basic YWlndWw6eA=="})
    error_of(basic, 401)


def test_403_for_a_role_that_may_not_act(api, db_sessions):
    task = start_intake(api)["ready_tasks"][0]
    before = snapshot(db_sessions, task["instance_id"])
    refused = api("maria").post(f"/tasks/{task['id']}/complete", {"data": VALID_CHILD})
    assert error_of(refused, 403)["code"] == "forbidden"
    assert error_of(api("maria").post(f"/tasks/{task['id']}/claim"), 403)
    # Same role, other district.
    assert error_of(api("rudny_spec").post(f"/tasks/{task['id']}/claim"), 403)
    assert error_of(api("maria").post("/procedures/test_intake/start"), 403)
    assert snapshot(db_sessions, task["instance_id"]) == before


def test_404_for_what_does_not_exist(api):
    assert error_of(api("aigul").get("/tasks/999999"), 404)["code"] == "not_found"
    assert error_of(api("aigul").post("/tasks/999999/complete", {"data": {}}), 404)
    assert error_of(api("aigul").post("/procedures/no_such_process/start"), 404)
    assert error_of(api("aigul").get("/cases/999999"), 404)
    assert api("aigul").get("/no-such-route").status_code == 404


def test_409_when_completed_twice_says_who_and_when(api, db_sessions):
    task = start_intake(api)["ready_tasks"][0]
    assert (
        api("aigul").post(f"/tasks/{task['id']}/complete", {"data": VALID_CHILD}).status_code == 200
    )
    after = snapshot(db_sessions, task["instance_id"])
    again = error_of(
        api("erzhan").post(f"/tasks/{task['id']}/complete", {"data": VALID_CHILD}), 409
    )
    assert again["code"] == "invalid_transition"
    # Who (the full name) and when (Kostanay's 10:00 is 05:00 UTC).
    assert "already completed by Aigul at 2026-03-02T05:00" in again["message"]
    assert snapshot(db_sessions, task["instance_id"]) == after


def test_409_for_a_stale_revision_changes_nothing(api, db_sessions):
    started = start_intake(api)
    task = started["ready_tasks"][0]
    stale = started["revision"] - 1
    before = snapshot(db_sessions, started["id"])
    reply = api("aigul").post(
        f"/tasks/{task['id']}/complete", {"data": VALID_CHILD, "revision": stale}
    )
    body = error_of(reply, 409)
    assert body["code"] == "conflict" and "reload" in body["message"]
    assert error_of(api("aigul").post(f"/tasks/{task['id']}/claim", {"revision": stale}), 409)
    assert snapshot(db_sessions, started["id"]) == before


def test_422_names_every_bad_field(api, db_sessions):
    task = start_intake(api)["ready_tasks"][0]
    before = snapshot(db_sessions, task["instance_id"])
    path = f"/tasks/{task['id']}/complete"

    wrong_iin = error_of(
        api("aigul").post(path, {"data": dict(VALID_CHILD, child_iin="190515600017")}), 422
    )
    assert wrong_iin["code"] == "validation_failed"
    assert list(wrong_iin["fields"]) == ["child_iin"] and wrong_iin["fields"]["child_iin"][0]

    unknown = error_of(api("aigul").post(path, {"data": dict(VALID_CHILD, salary=1)}), 422)
    assert "salary" in unknown["fields"]

    missing = error_of(api("aigul").post(path, {"data": {"child_name": "Аружан"}}), 422)
    assert set(missing["fields"]) == {"child_age", "child_iin"}

    # The request itself: no "data", an unknown top-level field, a body that is no object.
    no_data = error_of(api("aigul").post(path, {"revision": 1, "extra": True}), 422)
    assert set(no_data["fields"]) == {"data", "extra"}
    not_object = api("aigul").client.post(
        f"/api/v1{path}",
        data="[1, 2]",
        content_type="application/json",
        headers=api("aigul").headers,
    )
    assert list(error_of(not_object, 422)["fields"]) == ["(body)"]
    assert snapshot(db_sessions, task["instance_id"]) == before


def test_field_messages_follow_the_users_language(api, db_sessions):
    task = start_intake(api)["ready_tasks"][0]
    path = f"/tasks/{task['id']}/complete"
    bad = {"data": dict(VALID_CHILD, child_iin="190515600017")}
    with unit_of_work(db_sessions) as s:
        get_user(s, "aigul").language = "en"
    english = error_of(api("aigul").post(path, bad), 422)["fields"]["child_iin"]
    assert english == ["the check digit is wrong"]
    with unit_of_work(db_sessions) as s:
        get_user(s, "aigul").language = "ru"
    russian = error_of(api("aigul").post(path, bad), 422)["fields"]["child_iin"]
    assert len(russian) == 1 and russian != english


# --- tokens and the session -------------------------------------------------------------


def test_a_revoked_token_stops_working_and_only_its_hash_is_stored(
    api, db_sessions, api_world, clock
):
    world = api_world
    assert api("aigul").get("/inbox").status_code == 200
    with unit_of_work(db_sessions) as s:
        [mine] = engine_tokens.list_tokens(s, username="aigul")
        assert mine.last_used_at == clock.now()
        from engine.models.cases import ApiToken

        row = s.get(ApiToken, mine.id)
        assert row.token_hash == engine_tokens.hash_secret(world["aigul"])
        assert world["aigul"] not in row.token_hash
        aigul = get_user(s, "aigul")
        erzhan = get_user(s, "erzhan")
        from engine.identity import actor_for

        with pytest.raises(Exception, match="may not revoke"):
            engine_tokens.revoke_token(
                s, token_id=mine.id, actor=actor_for(erzhan), now=clock.now()
            )
        engine_tokens.revoke_token(s, token_id=mine.id, actor=actor_for(aigul), now=clock.now())
    error_of(api("aigul").get("/inbox"), 401)
    assert api("erzhan").get("/inbox").status_code == 200


def _sign_in(client, db_sessions, username):
    with unit_of_work(db_sessions) as s:
        user_id = get_user(s, username).id
    with client.session_transaction() as browser:
        browser["user_id"] = user_id
        browser["csrf_token"] = "known-token"


def test_the_session_works_too_but_writes_need_the_csrf_header(api_client, db_sessions):
    client = api_client
    _sign_in(client, db_sessions, "aigul")
    assert client.get("/api/v1/inbox").status_code == 200
    refused = client.post("/api/v1/procedures/test_intake/start", json={})
    assert refused.status_code == 400 and refused.json["error"]["code"] == "bad_request"
    started = client.post(
        "/api/v1/procedures/test_intake/start", json={}, headers={"X-CSRF-Token": "known-token"}
    )
    assert started.status_code == 201
    # An Authorization header never falls back to the cookie, even with a valid session.
    forged = client.post(
        "/api/v1/procedures/test_intake/start", json={}, headers={"Authorization": "Bearer x"}
    )
    assert forged.status_code == 401


# --- the OpenAPI document ---------------------------------------------------------------


def test_the_openapi_document_is_valid_and_lists_every_route(api_app, api_client):
    app, client = api_app, api_client
    reply = client.get("/api/v1/openapi.json")
    assert reply.status_code == 200
    document = reply.json
    validate(document)
    documented = {
        (path, method) for path, methods in document["paths"].items() for method in methods
    }
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = rule.rule.removeprefix("/api/v1")
            for converter in ("int:", "string:"):
                path = path.replace(f"<{converter}", "<")
            path = path.replace("<", "{").replace(">", "}")
            served.update((path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"})
    assert documented == served
    complete = document["paths"]["/tasks/{task_id}/complete"]["post"]
    assert set(complete["responses"]) == {"200", "401", "403", "404", "409", "422"}
    assert document["components"]["schemas"]["Error"]["properties"]["error"]


# --- cases over the API -----------------------------------------------------------------


def test_cases_create_read_and_start_a_procedure_for_a_case(api, db_sessions):
    created = api("aigul").post("/cases", {"child_name": "Аружан", "child_iin": GIRL_IIN})
    assert created.status_code == 201, created.json
    case = created.json
    assert case["number"] == "KST-2026-000001"
    assert (case["child_birth_date"], case["child_sex"]) == ("2019-05-15", "female")
    assert case["child_iin_masked"] == "190515*****6"
    assert GIRL_IIN not in created.get_data(as_text=True)

    # The case-intake start form declares the child's name and IIN: they enter the data.
    run = api("aigul").post("/procedures/case_intake/start", {"case_id": case["id"]})
    assert run.status_code == 201, run.json
    assert run.json["business_key"] == case["number"]
    # The test intake declares no start form: nothing is added, and it starts.
    other = api("aigul").post("/procedures/test_intake/start", {"case_id": case["id"]})
    assert other.status_code == 201, other.json
    with unit_of_work(db_sessions) as s:
        data = instances.instance_data(s, instance_id=run.json["id"])
        assert (data["child_name"], data["child_iin"]) == ("Аружан", GIRL_IIN)
        row = s.scalar(select(HumanTask).where(HumanTask.instance_id == run.json["id"]))
        assert (row.case_number, row.child_iin) == (case["number"], GIRL_IIN)
        assert "child_name" not in instances.instance_data(s, instance_id=other.json["id"])

    read = api("aigul").get(f"/cases/{case['id']}").json
    assert [p["process_key"] for p in read["procedures"]] == ["case_intake", "test_intake"]
    second = api("erzhan").post("/cases", {"child_name": "Нұрсұлтан"})
    assert second.json["number"] == "KST-2026-000002"


def test_case_input_errors_are_per_field(api):
    wrong = error_of(
        api("aigul").post("/cases", {"child_name": "А", "child_iin": "190515600017"}), 422
    )
    assert list(wrong["fields"]) == ["child_iin"]
    contradicted = error_of(
        api("aigul").post(
            "/cases",
            {
                "child_name": "А",
                "child_iin": GIRL_IIN,
                "child_birth_date": "2019-05-16",
                "child_sex": "male",
            },
        ),
        422,
    )
    assert set(contradicted["fields"]) == {"child_birth_date", "child_sex"}
    missing = error_of(api("aigul").post("/cases", {"child_iin": GIRL_IIN, "x": 1}), 422)
    assert set(missing["fields"]) == {"child_name", "x"}
    assert api("aigul").get("/cases").json["cases"] == []


def test_case_access_follows_role_and_district(api):
    case = api("aigul").post("/cases", {"child_name": "Аружан"}).json
    path = f"/cases/{case['id']}"
    assert api("erzhan").get(path).status_code == 200  # same district
    assert error_of(api("rudny_spec").get(path), 403)["code"] == "forbidden"
    assert error_of(api("dina").get(path), 403)  # psychologist of Rudny
    for regional in ("maria", "head", "admin", "auditor"):
        assert api(regional).get(path).status_code == 200, regional
    assert error_of(api("analyst").get(path), 403)
    # The auditor only reads; nobody outside the district writes.
    assert error_of(api("auditor").post(f"{path}/comments", {"body": "x"}), 403)
    assert error_of(api("rudny_spec").post(f"{path}/comments", {"body": "x"}), 403)
    assert error_of(api("auditor").post("/cases", {"child_name": "Б"}), 403)
    assert api("maria").post(f"{path}/comments", {"body": "Legal note"}).status_code == 201
    # Lists show only what one may open.
    assert [c["id"] for c in api("erzhan").get("/cases").json["cases"]] == [case["id"]]
    assert api("rudny_spec").get("/cases").json["cases"] == []
    # A district specialist cannot open a case in another district.
    assert error_of(
        api("rudny_spec").post("/cases", {"child_name": "В", "district": "kostanay_city"}), 403
    )
    added = api("erzhan").post(
        f"{path}/people", {"role": "mother", "full_name": "Айгерім", "iin": "190515600017"}
    )
    assert list(error_of(added, 422)["fields"]) == ["iin"]


def test_the_tokens_command_creates_lists_and_revokes(api, api_client, db_url):
    from click.testing import CliRunner

    from web.tokens_cli import tokens

    runner = CliRunner()
    env = {"QORGAU_DATABASE_URL": db_url}
    created = runner.invoke(tokens, ["create", "erzhan", "laptop"], env=env)
    assert created.exit_code == 0, created.output
    token_id, secret = created.stdout.split()[1], created.stdout.split()[-1]
    headers = {"Authorization": f"Bearer {secret}"}
    assert api_client.get("/api/v1/inbox", headers=headers).status_code == 200
    listed = runner.invoke(tokens, ["list", "erzhan"], env=env)
    assert "laptop" in listed.output and secret not in listed.output
    assert runner.invoke(tokens, ["revoke", token_id], env=env).exit_code == 0
    assert api_client.get("/api/v1/inbox", headers=headers).status_code == 401
    assert runner.invoke(tokens, ["create", "nobody", "x"], env=env).exit_code == 2
