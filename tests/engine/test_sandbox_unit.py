"""The sandbox's parts one by one: compiler analysis, helpers, wire format, environment."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from engine.clock import FixedClock
from engine.errors import ScriptError
from engine.sandbox import (
    HELPERS,
    SandboxPool,
    compile_expression,
    compile_script,
    get_pool,
)
from engine.sandbox import helpers as h
from engine.sandbox.environment import (
    QorgauScriptEngine,
    RestrictedEnvironment,
    evaluate_in_process,
    make_script_engine,
    script_error_of,
)
from engine.sandbox.pool import WireError, from_wire, run_code, to_wire


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(workers=1, timeout=2.0) as sandbox_pool:
        yield sandbox_pool


# --- compiler ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "age >= 18",
        "status == 'approved' and not blocked",
        "(age) == (14)",
        "form.get('approved') is True",
        "x in ['a', 'b'] or y[0] != z['k']",
        '"PT1H"',
        "add_working_days(registered, 10) <= today()",
        "len(children) > 2 and max(ages) < 18",
        "f'{name} {age}'",
        "-a + b - c / d // 2",
        "  age >= 18\n",
        "'a' * n",
    ],
)
def test_bounded_expressions_run_in_process(source):
    assert compile_expression(source).in_process_safe


@pytest.mark.parametrize(
    "source",
    [
        "2 ** n",
        "1 << n",
        "'%999999999d' % 1",
        "n % 2",
        "[x for x in items]",
        "(lambda: 1)()",
        "sum(range(n))",
        "name.ljust(n)",
        "','.join(items)",
        "f'{name:>999999999}'",
        "items.append(1)",
        "fn(*args)",
        "max(**kw)",
        "(x := 1)",
        "x.get(1)(2)",
        " or ".join(["a"] * 500),
        "sorted(items)",
    ],
)
def test_unbounded_expressions_go_to_the_pool(source):
    assert not compile_expression(source).in_process_safe


@pytest.mark.parametrize(
    "source",
    [
        "x = 1",
        "score = value * 2 + 1\napproved = score > 5",
        'if kind == "guardianship":\n    template = "a"\nelse:\n    template = "b"\n'
        'subject = kind + ": " + name\n',
        '"A note."\npass\n',
    ],
)
def test_straight_line_scripts_run_in_process(source):
    assert compile_script(source).in_process_safe


@pytest.mark.parametrize(
    "source",
    [
        "for i in items:\n    x = i\n",
        "while x:\n    x = x - 1\n",
        "x = [i for i in items]",
        "def f():\n    return 1\n",
        "items.append(1)",
        "a[0] = 1",
        "a, b = pair",
        "x += 1",
        "x = y ** 2",
        "x = '%s' % y",
        "x = 1\n" * 400,
    ],
)
def test_other_scripts_go_to_the_pool(source):
    assert not compile_script(source).in_process_safe


def test_names_read_and_assigned():
    code = compile_script(
        "y = x + 1\nz += 1\ndel w\nfor i in items:\n    total = i\ndef f():\n    pass"
    )
    assert code.names_read >= {"x", "z", "w", "items"}
    assert "y" not in code.names_read
    assert code.names_assigned >= {"y", "z", "w", "i", "total", "f"}
    assert code.kind == "script"


def test_compiled_code_is_cached():
    assert compile_expression("a + 1") is compile_expression("a + 1")
    assert compile_script("a = 1") is compile_script("a = 1")


def test_source_limits():
    with pytest.raises(ScriptError) as caught:
        compile_script("x = 1\n" * 30_000)
    assert caught.value.kind == "refused"
    with pytest.raises(ScriptError) as caught:
        compile_expression("1 +")
    assert caught.value.kind == "syntax"
    assert caught.value.line == 1


@pytest.mark.parametrize("terms", [1000, 100_000 // 2])
def test_pathological_nesting_is_refused_cleanly(terms):
    with pytest.raises(ScriptError) as caught:
        compile_expression("+".join(["a"] * terms))
    assert caught.value.kind in ("refused", "syntax")
    assert "deep" in caught.value.message or "recursion" in caught.value.message


def test_ordinary_nesting_compiles():
    assert compile_expression("+".join(["a"] * 100)).in_process_safe


def test_policy_refuses_print_and_dunder_assignment():
    for source, fragment in [("print(1)", '"print"'), ("__x = 1", '"__x"')]:
        with pytest.raises(ScriptError, match=fragment) as caught:
            compile_script(source)
        assert caught.value.kind == "refused"


# --- helpers -----------------------------------------------------------------------------------


def test_helper_whitelist():
    assert set(HELPERS) >= {
        "date",
        "datetime",
        "timedelta",
        "today",
        "now",
        "parse_date",
        "add_days",
        "add_working_days",
        "is_working_day",
        "age_on",
        "iin_is_valid",
        "iin_birth_date",
        "iin_sex",
    }
    for forbidden in ("getattr", "setattr", "type", "vars", "globals", "eval", "exec", "open"):
        assert forbidden not in h.SANDBOX_BUILTINS
    assert "__import__" not in h.SANDBOX_BUILTINS


def test_kazakhstan_working_days():
    assert h.is_working_day(date(2025, 1, 5))  # a Sunday made a working day by decree
    assert not h.is_working_day(date(2025, 1, 3))  # the Friday it was swapped for
    assert not h.is_working_day(date(2025, 1, 4))  # an ordinary Saturday
    assert not h.is_working_day(date(2025, 3, 21))  # Nauryz
    assert h.is_working_day("2025-03-27")
    assert h.add_working_days(date(2025, 1, 1), 10) == date(2025, 1, 17)
    # Back over Jan 5 (working Sunday), Jan 3 (day off), Jan 1-2 (New Year).
    assert h.add_working_days(date(2025, 1, 17), -10) == date(2024, 12, 31)
    assert h.add_working_days(date(2025, 3, 19), 0) == date(2025, 3, 19)
    assert h.add_days("2025-02-27", 2) == date(2025, 3, 1)


def test_working_day_bound():
    assert h.add_working_days(date(2025, 1, 1), 3660) > date(2039, 1, 1)
    with pytest.raises(ValueError, match="3660"):
        h.add_working_days(date(2025, 1, 1), 3661)
    with pytest.raises(ValueError, match="3660"):
        h.add_working_days(date(2025, 1, 1), -(10**12))
    with pytest.raises(TypeError):
        h.add_working_days(date(2025, 1, 1), 1.5)
    with pytest.raises(ValueError):
        h.add_working_days(date(9999, 12, 30), 5)


def test_dates_and_ages():
    assert h.parse_date("2025-03-08") == date(2025, 3, 8)
    assert h.parse_date("08.03.2025") == date(2025, 3, 8)
    assert h.parse_date("2025-03-08T10:00:00+05:00") == date(2025, 3, 8)
    for bad in ("30.02.2025", "yesterday", "1" * 1000):
        with pytest.raises(ValueError):
            h.parse_date(bad)
    assert h.age_on(date(2010, 5, 20), date(2025, 5, 19)) == 14
    assert h.age_on("2010-05-20", "2025-05-20") == 15
    assert h.age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert h.age_on(date(2008, 2, 29), date(2026, 3, 1)) == 18


def test_iin_helpers():
    assert h.iin_is_valid("791028302728")
    assert not h.iin_is_valid("791028302729")
    assert not h.iin_is_valid(791028302728)
    assert h.iin_birth_date("061211600012") == date(2006, 12, 11)
    assert h.iin_sex("061211600012") == "female"
    with pytest.raises(ValueError, match="check digit"):
        h.iin_sex("791028302729")


def test_clock_drives_now_and_today():
    moment = datetime(2025, 3, 20, 20, 30, tzinfo=UTC)
    with h.frozen_now(moment):
        assert h.now() == moment
        assert h.today() == date(2025, 3, 21)  # already the 21st in Kazakhstan (UTC+5)
    assert h.now().tzinfo is not None


def test_guards():
    with pytest.raises(h.SandboxLimitError):
        h.guarded_mul("ab", 10**8)
    with pytest.raises(h.SandboxLimitError):
        h.guarded_mul(10**8, [1])
    with pytest.raises(h.SandboxLimitError):
        h.guarded_pow(10, 10**7)
    with pytest.raises(h.SandboxLimitError):
        h.guarded_lshift(1, 10**7)
    with pytest.raises(h.SandboxLimitError):
        h.guarded_range(10**11)
    with pytest.raises(h.SandboxLimitError):
        h.guarded_range(10**30)
    assert h.guarded_mul("ab", 3) == "ababab"
    assert h.guarded_pow(2, 10) == 1024
    assert h.guarded_pow(2, 10**9, 7) == pow(2, 10**9, 7)
    assert h.guarded_pow(2.0, -1) == 0.5
    assert h.guarded_inplacevar("+=", [1], [2]) == [1, 2]
    with pytest.raises(TypeError, match="not subscriptable"):
        h.guarded_getitem(date(2025, 1, 1), 0)


# --- wire format ---------------------------------------------------------------------------------


def test_wire_round_trip():
    value = {
        "d": date(2025, 1, 2),
        "dt": datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        "naive": datetime(2025, 1, 2, 3, 4),
        "td": timedelta(days=-1, seconds=5, microseconds=7),
        "dec": Decimal("10.50"),
        "tuple": (1, "a", None),
        "nested": [{"$t": "not a tag", "x": [True, 1.5]}],
    }
    wire = to_wire(value, "value")
    import json

    assert from_wire(json.loads(json.dumps(wire))) == value
    assert type(from_wire(to_wire((1,), "t"))) is tuple


@pytest.mark.parametrize("value", [{1, 2}, {1: "a"}, object(), range(3), b"x"])
def test_wire_refuses_other_types(value):
    with pytest.raises(WireError, match="variable 'x'"):
        to_wire(value, "variable 'x'")


def test_wire_refuses_deep_nesting():
    value: list = []
    for _ in range(100):
        value = [value]
    with pytest.raises(WireError, match="nested"):
        to_wire(value, "v")


def test_worker_protocol_without_processes():
    reply = run_code(
        {
            "op": "execute",
            "source": "b = a + 1\nitems.append(3)\ndel gone\nkeep = keep\ndef f():\n    pass",
            "variables": {
                "a": 1,
                "items": [1, 2],
                "gone": 0,
                "keep": {"$t": "date", "v": "2025-01-01"},
            },
        }
    )
    assert reply == {"ok": True, "changed": {"b": 2, "items": [1, 2, 3]}, "deleted": ["gone"]}
    reply = run_code({"op": "evaluate", "source": "1 / 0"})
    assert reply["ok"] is False
    assert reply["message"] == "ZeroDivisionError: division by zero"
    assert reply["line"] == 1


# --- environment and engine ----------------------------------------------------------------------


def test_in_process_evaluation():
    code = compile_expression("age_on(born, today()) >= 18")
    moment = datetime(2025, 6, 1, tzinfo=UTC)
    assert evaluate_in_process(code, {"born": date(2007, 5, 31)}, moment) is True
    with pytest.raises(ScriptError) as caught:
        evaluate_in_process(compile_expression("missing > 1"), {})
    assert caught.value.kind == "error"
    assert caught.value.message == "NameError: name 'missing' is not defined"
    with pytest.raises(ValueError):
        evaluate_in_process(compile_expression("2 ** 3"), {})


def test_environment_evaluate_and_execute(pool):
    clock = FixedClock(datetime(2025, 1, 1, 12, tzinfo=UTC))
    env = RestrictedEnvironment(pool=pool, clock=clock)
    data = {"n": 3, "case": {"status": "new"}, "tmp": 1, "date": "a form field"}
    assert env.evaluate("n * 2", data) == 6  # pool
    assert env.evaluate("n + k", data, {"k": 1, "n": 100}) == 4  # task data shadows external
    assert env.evaluate("today()", {}) == date(2025, 1, 1)
    assert env.evaluate("date", data) == "a form field"  # data shadows a helper's name
    script = "case['status'] = 'open'\ndel tmp\ndue = add_working_days(today(), 1)\nobj = 5\n"
    assert env.execute(script, data, {"obj": 1}) is True
    assert data["case"] == {"status": "open"}
    assert "tmp" not in data
    assert data["due"] == date(2025, 1, 5)  # Jan 2 holiday, Jan 3 off, Sunday Jan 5 worked
    assert "obj" not in data  # external names do not leak into task data


def test_engine_validate_for_dmn():
    engine = QorgauScriptEngine(RestrictedEnvironment(pool=lambda: get_pool()))
    engine.validate("x == 1")
    with pytest.raises(SyntaxError) as caught:
        engine.validate(">= 14")
    assert caught.value.lineno == 1
    assert isinstance(caught.value.__cause__, ScriptError)
    with pytest.raises(ScriptError) as refused:
        engine.validate("x.__class__")
    assert refused.value.kind == "refused"


def test_script_error_of_walks_chains():
    inner = ScriptError("boom", kind="timeout")
    try:
        try:
            raise inner
        except ScriptError:
            raise RuntimeError("wrapped") from None
    except RuntimeError as outer:
        assert script_error_of(outer) is None
    try:
        try:
            raise inner
        except ScriptError as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError as outer:
        assert script_error_of(outer) is inner
    assert script_error_of(ValueError()) is None


def test_get_pool_is_a_per_process_singleton():
    first = get_pool()
    assert first is get_pool()
    assert first.evaluate(compile_expression("n * 2"), {"n": 21}) == 42
    assert isinstance(make_script_engine(), QorgauScriptEngine)


def test_closed_pool_refuses():
    closing = SandboxPool(workers=1)
    closing.close()
    with pytest.raises(ScriptError, match="closed"):
        closing.evaluate(compile_expression("n * 2"), {"n": 1})


def test_only_read_variables_are_sent(pool):
    # An unsendable value the code does not read is no obstacle: it never leaves the process.
    assert pool.evaluate(compile_expression("a * 2"), {"a": 2, "other": {1, 2}}) == 4


# --- in-process running ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "data"),
    [
        ("score = value * 2 + 1\napproved = score > 5", {"value": 3}),
        (
            'if kind == "guardianship":\n    template = "g"\nelse:\n    template = "c"\n'
            'subject = kind + ": " + name + f" ({len(name)})"\n',
            {"kind": "custody", "name": "Айгерім"},
        ),
        (
            "same = value\nparts = text.split()\nwhen = add_days(today(), 3)",
            {"value": 1, "text": "a b", "unused": [1]},
        ),
        (
            "pair = (a, b)\nkeys = list_of\nmoney = Decimal('1.50') + amount",
            {"a": 1, "b": date(2025, 1, 1), "list_of": [1, {"k": "v"}], "amount": Decimal("2")},
        ),
        ("f = today\nhelper_gone = today", {"helper_gone": 1}),
    ],
)
def test_in_process_scripts_change_what_the_pool_would(pool, script, data):
    from engine.sandbox import inprocess

    code = compile_script(script)
    assert code.in_process_safe
    moment = datetime(2025, 6, 1, 9, tzinfo=UTC)
    here = inprocess.execute(code, dict(data), moment)
    there = pool.execute(code, dict(data), now=moment)
    assert here.deleted == there.deleted
    # The pool leaves out a name assigned its own value again; both end with the same data.
    assert {**data, **here.changed} == {**data, **there.changed}


def test_in_process_results_are_copies():
    from engine.sandbox import inprocess

    data = {"items": [1, [2]]}
    outcome = inprocess.execute(compile_script("same = items"), data)
    assert outcome.changed["same"] == [1, [2]]
    assert outcome.changed["same"] is not data["items"]
    assert outcome.changed["same"][1] is not data["items"][1]


def test_in_process_errors_match_the_pool(pool):
    from engine.sandbox import inprocess

    for script, data in [
        ("x = 1\ny = missing + 1\n", {}),
        ("k = d.keys()", {"d": {"a": 1}}),
        ("x = 1\nif x:\n    y = 1 / 0\n", {}),
        ("r = round(5, -1000)", {}),
    ]:
        code = compile_script(script)
        with pytest.raises(ScriptError) as here:
            inprocess.execute(code, data)
        with pytest.raises(ScriptError) as there:
            pool.execute(code, data)
        assert (here.value.kind, here.value.line) == (there.value.kind, there.value.line)
        assert here.value.message.split(":")[0] == there.value.message.split(":")[0]


@pytest.mark.parametrize(
    ("source", "data"),
    [
        ("text + 'x'", {"text": "a" * 5000}),  # the input is past the limit
        ("text + text", {"text": "a" * 3000}),  # the sum would be
        ("[text] * 5000", {"text": "a"}),  # checked before it is built
        ("str(text.split())", {"text": "a " * 1000}),  # built, then found too long
        ("value * value", {"value": 2**3000}),
        ("int(Decimal('1e100000'))", {}),
        ("f'{items}'", {"items": list(range(1000))}),
        ("len(things)", {"things": {1, 2}}),  # not task data: the pool names the problem
    ],
)
def test_past_the_limits_code_goes_to_the_pool(source, data):
    from engine.sandbox import inprocess

    code = compile_expression(source)
    assert code.in_process_safe
    with pytest.raises(inprocess.NeedsPool):
        inprocess.evaluate(code, data)


def test_environment_falls_back_to_the_pool(pool):
    env = RestrictedEnvironment(pool=pool)
    assert env.evaluate("len(str(text.split()))", {"text": "ab " * 1000}) == len(
        str(("ab " * 1000).split())
    )
    data = {"text": "ab " * 1000}
    env.execute("words = str(text.split())\nn = len(words)", data)
    assert data["n"] == len(str(("ab " * 1000).split()))
