"""The engine step's few statements, compiled once per dialect and run on the driver's cursor.

Every command reads and writes the same handful of statements (engine/runtime.py). Run
through SQLAlchemy's ``Connection.execute`` each one costs about three times what the
driver itself spends on it: an execution context, result metadata and events per call,
rebuilt every time although nothing about the statement changes.

``Prepared`` keeps what SQLAlchemy computes for a statement anyway, once per dialect: the
SQL text, the order of its parameters and the type conversion of every bound value and
every result column (``TypeEngine.bind_processor`` / ``result_processor``, so a datetime or
a JSON value goes in and comes out exactly as through SQLAlchemy). It then runs on the
DB-API cursor of the session's own connection: the same transaction, the same locks.

Only plain statements qualify: named bind parameters or literals, no expanding ``IN``
lists; anything else is refused when the statement is first compiled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.expression import Executable

_NONE = object()


@dataclass(frozen=True)
class _Form:
    """A statement as one dialect runs it."""

    sql: str
    # Positional paramstyles (SQLite's ``?``) take a tuple in this order; named ones a dict.
    names: tuple[str, ...]
    positional: bool
    # Per parameter, in ``names`` order: its literal value (or _NONE) and its conversion.
    plan: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]
    columns: tuple[str, ...]
    result_processors: tuple[tuple[int, Callable[[Any], Any]], ...]

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        out = []
        for name, literal, processor in self.plan:
            value = values[name] if literal is _NONE or name in values else literal
            out.append(value if processor is None else processor(value))
        if self.positional:
            return tuple(out)
        return dict(zip(self.names, out, strict=True))

    def row(self, raw: Sequence[Any]) -> dict[str, Any]:
        values = list(raw)
        for index, processor in self.result_processors:
            values[index] = processor(values[index])
        return dict(zip(self.columns, values, strict=True))


def _compile(statement: Executable, dialect: Dialect, columns: Sequence[str] | None) -> _Form:
    compiled = statement.compile(dialect=dialect, column_keys=columns)
    named = {name: bind for bind, name in compiled.bind_names.items()}
    positional = bool(compiled.positional)
    names = tuple(compiled.positiontup) if positional else tuple(named)
    plan = []
    for name in names:
        bind = named[name]
        if bind.expanding:
            raise ValueError(f"{name}: expanding parameters are not supported here")
        literal = _NONE if bind.required else bind.effective_value
        plan.append((name, literal, bind.type.dialect_impl(dialect).bind_processor(dialect)))
    keys: list[str] = []
    results: list[tuple[int, Callable[[Any], Any]]] = []
    # A query's columns, or what an INSERT/UPDATE returns.
    for index, column in enumerate(getattr(statement, "exported_columns", ())):
        keys.append(column.key)
        processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if processor is not None:
            results.append((index, processor))
    return _Form(
        sql=compiled.string,
        names=names,
        positional=positional,
        plan=tuple(plan),
        columns=tuple(keys),
        result_processors=tuple(results),
    )


class Prepared:
    """One Core statement, ready to run on any dialect it meets (compiled at first use).

    ``columns`` names the values an INSERT or UPDATE without ``values()`` sets, as
    SQLAlchemy would take them from the first parameter set: every call passes them all.
    """

    def __init__(self, statement: Executable, columns: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.columns = tuple(columns) if columns is not None else None
        self._forms: dict[Dialect, _Form] = {}
        self._lock = threading.Lock()

    def _form(self, connection: Connection) -> _Form:
        dialect = connection.dialect
        form = self._forms.get(dialect)
        if form is None:
            with self._lock:
                form = self._forms.get(dialect) or _compile(self.statement, dialect, self.columns)
                self._forms[dialect] = form
        return form

    @staticmethod
    def _cursor(connection: Connection) -> Any:
        return connection.connection.driver_connection.cursor()

    def rows(self, connection: Connection, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Run a query; its rows as dictionaries keyed by column."""
        form = self._form(connection)
        cursor = self._cursor(connection)
        try:
            cursor.execute(form.sql, form.parameters(values))
            return [form.row(raw) for raw in cursor.fetchall()]
        finally:
            cursor.close()

    def one_or_none(
        self, connection: Connection, values: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        found = self.rows(connection, values)
        if len(found) > 1:
            raise LookupError(f"expected at most one row, got {len(found)}")
        return found[0] if found else None

    def execute(self, connection: Connection, values: Mapping[str, Any]) -> int:
        """Run a change; the number of rows it matched."""
        form = self._form(connection)
        cursor = self._cursor(connection)
        try:
            cursor.execute(form.sql, form.parameters(values))
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def execute_many(self, connection: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        """Run a change once per parameter set (no RETURNING)."""
        form = self._form(connection)
        cursor = self._cursor(connection)
        try:
            cursor.executemany(form.sql, [form.parameters(values) for values in rows])
        finally:
            cursor.close()

    def returning(self, connection: Connection, values: Mapping[str, Any]) -> dict[str, Any]:
        """Run an ``INSERT … RETURNING``; the row it returned."""
        found = self.rows(connection, values)
        if len(found) != 1:
            raise LookupError(f"expected one returned row, got {len(found)}")
        return found[0]
