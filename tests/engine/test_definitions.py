"""Deploy and validate from the command line: all or nothing, one line per problem."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from engine.db import make_engine, make_sessionmaker, unit_of_work
from engine.models import Deployment, ProcessVersion
from tests.factories import ENGINE_DATA
from web.cli import main


@pytest.fixture
def cli(sqlite_url, monkeypatch):
    monkeypatch.setenv("QORGAU_DATABASE_URL", sqlite_url)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, list(args))

    return run


def _counts(url):
    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as s:
        result = (
            s.scalar(select(func.count()).select_from(Deployment)),
            s.scalar(select(func.count()).select_from(ProcessVersion)),
        )
    engine.dispose()
    return result


def _copy_defs(tmp_path):
    target = tmp_path / "defs"
    shutil.copytree(ENGINE_DATA, target)
    return target


def test_deploy_then_deploy_again_changes_nothing(cli, sqlite_url, tmp_path):
    defs = _copy_defs(tmp_path)
    first = cli("deploy", str(defs), "--forms", str(defs / "forms"))
    assert first.exit_code == 0, first.output
    assert "deployed test_intake version 1" in first.output
    again = cli("deploy", str(defs), "--forms", str(defs / "forms"))
    assert again.exit_code == 0
    assert "nothing changed" in again.output
    assert _counts(sqlite_url) == (1, 6)
    listing = cli("versions")
    assert "test_intake\tv1" in listing.output


def test_bad_expression_is_reported_with_element_and_line_and_nothing_deployed(
    cli, sqlite_url, tmp_path
):
    defs = _copy_defs(tmp_path)
    path = defs / "test_intake.bpmn"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("score = len(child_name) + years", "score = len(child_name) +"),
        encoding="utf-8",
    )
    result = cli("deploy", str(defs), "--forms", str(defs / "forms"))
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if "test_intake.bpmn" in ln]
    assert any("[score]" in ln and "line 3" in ln for ln in lines), result.output
    assert _counts(sqlite_url) == (0, 0)
    check = cli("validate", str(defs), "--forms", str(defs / "forms"))
    assert check.exit_code == 2


def test_missing_form_and_rule_are_named(cli, sqlite_url, tmp_path):
    defs = _copy_defs(tmp_path)
    (defs / "forms" / "test" / "legal.json").unlink()
    (defs / "deadlines.yaml").write_text("rules: {}\n", encoding="utf-8")
    result = cli("validate", str(defs), "--forms", str(defs / "forms"))
    assert result.exit_code == 2
    assert "[legal_check] form 'test/legal' not found" in result.output
    assert "[register] deadline rule 'test.register_term' is not in the rules files" in (
        result.output
    )


def test_hostile_xml_is_refused_at_deploy(cli, sqlite_url, tmp_path):
    defs = _copy_defs(tmp_path)
    text = (defs / "test_loop.bpmn").read_text(encoding="utf-8")
    hostile = text.replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE x [<!ENTITY xxe SYSTEM '
        '"file:///etc/hostname">]>',
    ).replace('name="Review the documents"', 'name="&xxe;"')
    (defs / "test_loop.bpmn").write_text(hostile, encoding="utf-8")
    result = cli("deploy", str(defs), "--forms", str(defs / "forms"))
    assert result.exit_code == 2
    assert "test_loop.bpmn" in result.output and "DOCTYPE" in result.output
    assert _counts(sqlite_url) == (0, 0)


def test_users_commands(cli):
    assert cli("init", "--no-demo").exit_code == 0
    added = cli(
        "users",
        "add",
        "dana",
        "--full-name",
        "Дана",
        "--role",
        "lawyer",
        "--password",
        "long enough pw",
    )
    assert added.exit_code == 0, added.output
    assert "dana\tДана\tlawyer" in cli("users", "list").output
    assert cli("users", "set-role", "dana", "lawyer", "specialist").exit_code == 0
    assert "dana\tДана\tlawyer,specialist" in cli("users", "list").output
    unknown = cli("users", "set-role", "dana", "wizard")
    assert unknown.exit_code == 2 and "unknown role 'wizard'" in unknown.output
    taken = cli(
        "users",
        "add",
        "dana",
        "--full-name",
        "X",
        "--role",
        "lawyer",
        "--password",
        "long enough pw",
    )
    assert taken.exit_code == 2 and "taken" in taken.output
