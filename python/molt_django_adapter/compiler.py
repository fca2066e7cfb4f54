"""The SQL compilers of the molt backends.

Each of Django's compiler classes gets OffloadCompiler right after it in
the MRO, so Django's own logic (related updates, aggregation wrappers,
PostgreSQL's name checks) runs first and the base execute_sql, where the
statement is run, is this one. It compiles with Django's compiler, so
select/klass_info/col_count/converters stay Django's, and then either
hands the rows of the worker to Django or runs the statement the usual
way on Django's connection, with the reason logged.
"""

from __future__ import annotations

import time
import types
from itertools import chain
from typing import Any, Iterator, Optional

from django.core.exceptions import EmptyResultSet
from django.db.models import JSONField
from django.db.models.expressions import Col
from django.db.models.sql import compiler as base
from django.db.models.sql.constants import CURSOR, GET_ITERATOR_CHUNK_SIZE, MULTI, NO_RESULTS, SINGLE

from . import events
from .execution import Fallback, check_transaction, offload_wanted, run_write, stream_sync, worker_query
from .worker_tx import active_transaction
from .worker_tx import refused as worker_tx_refused
from .guards import check_guards
from .query_log import log_query
from .replay import NeedThread, fetch, in_replay, on_event_loop
from .sqlite_values import FinalValue, final_columns, skip_converters
from .model_instances import use_compiler_instances
from .values_dicts import use_compiler_dicts

ROW_COUNT = getattr(base, "ROW_COUNT", "row count")   # Django 5.2 (4.2 reads cursor.rowcount)
_READS = (MULTI, SINGLE)
_WRITE_RESULTS = (CURSOR, ROW_COUNT)


class RowsCursor:
    """The part of a DB-API cursor Django's result handling uses, over rows
    already fetched (or a write's row count)."""

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int = -1) -> None:
        self._rows = rows
        self._pos = 0
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        if self._pos >= len(self._rows):
            return None
        self._pos += 1
        return self._rows[self._pos - 1]

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        chunk = self._rows[self._pos:self._pos + size]
        self._pos += len(chunk)
        return chunk

    def close(self) -> None:
        self._rows = []


class OffloadCompiler(base.SQLCompiler):
    #: select position -> the JSONField column whose values the worker's rows
    #: already hold parsed (WorkerQuery.json_columns), set per execute_sql
    _molt_json_parsed: dict[int, Any] = {}
    #: SQLite: select position -> the Django converter the worker's rows
    #: already went through (WorkerQuery.final_columns), set per execute_sql
    _molt_final: dict[int, FinalValue] = {}
    #: values(): the names its dicts are keyed by, while molt_values_dicts runs
    _molt_dict_names: Optional[list[str]] = None
    #: the rows execute_sql returned are those dicts (WorkerQuery.as_dicts)
    _molt_dicts = False
    #: the rows execute_sql returned came from the worker (model_instances.py)
    molt_offloaded = False

    def execute_sql(self, result_type: Any = MULTI, chunked_fetch: bool = False,
                    chunk_size: int = GET_ITERATOR_CHUNK_SIZE) -> Any:
        self._molt_json_parsed = {}
        self._molt_final = {}
        self._molt_dicts = False
        self.molt_offloaded = False
        is_write = isinstance(self, (base.SQLUpdateCompiler, base.SQLDeleteCompiler))
        wanted = (result_type in _WRITE_RESULTS) if is_write else (result_type in _READS)
        if isinstance(self, base.SQLInsertCompiler) or not wanted or not offload_wanted(self.query, self.using):
            return super().execute_sql(result_type, chunked_fetch, chunk_size)
        try:
            sql, params = self.as_sql()
            if not sql:
                raise EmptyResultSet
        except EmptyResultSet:       # Django runs nothing either
            events.record(self.connection.alias, "", False, "EmptyResultSet: Django runs nothing, nothing was sent")
            return iter([]) if result_type == MULTI else None
        check_guards(self.connection)   # where Django's own cursor() would check
        if is_write:
            return self._offload_write(sql, params, result_type)
        streamed = chunked_fetch and self.connection.features.can_use_chunked_reads and not in_replay()
        try:
            check_transaction(self.connection)
            q = worker_query(self.connection, sql, params)
            q.final_columns = self._final_columns(result_type)
            if streamed:
                start = time.monotonic()
                chunks = stream_sync(q, chunk_size)
                self._molt_final = q.final_columns
                log_query(self.connection, q, time.monotonic() - start)   # Django's cursor: until execute returns
                events.record(self.connection.alias, sql, True, "streamed")
                self.molt_offloaded = True
                return self._trimmed(chunks)
            json_fields = self._json_field_columns()
            q.json_columns = tuple(json_fields)
            names = self._dict_names(json_fields, q.final_columns) if result_type == MULTI else None
            if names is not None:
                q.as_dicts(names)
            rows, seconds = fetch(q)
            self._molt_json_parsed = json_fields
            self._molt_final = q.final_columns
            self._molt_dicts = q.dict_names is not None
        except Fallback as e:
            if active_transaction(self.connection.alias) is not None:
                raise worker_tx_refused(self.connection.alias, str(e)) from None
            if on_event_loop():
                raise NeedThread() from None
            events.record(self.connection.alias, sql, False, str(e), warn=e.warn)
            return self._orm_results(sql, params, result_type, chunked_fetch, chunk_size)
        log_query(self.connection, q, seconds)
        events.record(self.connection.alias, sql, True)
        self.molt_offloaded = True
        return self._results(RowsCursor(rows), result_type, chunked_fetch, chunk_size)

    def molt_values_dicts(self, names: list[str], chunked_fetch: bool, chunk_size: int) -> Iterator[dict[str, Any]]:
        """values(): the rows as ValuesIterable's dicts (values_dicts.py).
        An offloaded read whose rows need no Django converter gets them
        built in C; any other runs as results_iter() and Django's dict
        comprehension."""
        self._molt_dict_names = names
        try:
            results = self.execute_sql(MULTI, chunked_fetch=chunked_fetch, chunk_size=chunk_size)
        finally:
            self._molt_dict_names = None
        if self._molt_dicts:
            return chain.from_iterable(results)
        indexes = range(len(names))
        return ({names[i]: row[i] for i in indexes}
                for row in self.results_iter(results, chunked_fetch=chunked_fetch, chunk_size=chunk_size))

    def _dict_names(self, json_fields: dict[int, Any], finals: dict[int, FinalValue]) -> Optional[list[str]]:
        """values(): its names, when each has its column and, with these
        columns' work done by the rows, Django has no converter left to
        run on them; else None (the rows stay tuples)."""
        names = self._molt_dict_names
        if names is None or self.has_extra_select or len(names) != self.col_count:
            return None
        fields = [s[0] for s in self.select[:self.col_count]]
        if getattr(self, "has_composite_fields", None) and self.has_composite_fields(fields):   # Django 5.2
            return None
        saved = self._molt_json_parsed, self._molt_final
        self._molt_json_parsed, self._molt_final = json_fields, finals
        try:
            return None if self.get_converters(fields) else names
        finally:
            self._molt_json_parsed, self._molt_final = saved

    def _json_field_columns(self) -> dict[int, Any]:
        """PostgreSQL: the selected plain JSONField columns (Django's own
        from_db_value, no custom decoder), whose text the rows then carry
        parsed exactly as that converter would parse it."""
        if self.connection.vendor != "postgresql" or not self.select:   # (an aggregate compiler has none)
            return {}
        out = {}
        for i, (expr, _sql, _alias) in enumerate(self.select[:self.col_count]):
            if not isinstance(expr, Col) or expr.target is not expr.output_field:
                continue
            f = expr.output_field
            if isinstance(f, JSONField) and f.decoder is None and type(f).from_db_value is JSONField.from_db_value:
                out[i] = expr
        return out

    def _final_columns(self, result_type: Any) -> dict[int, FinalValue]:
        """SQLite, rows for results_iter(): the selected columns whose first
        converter the rows can hold done (sqlite_values.py). Only for MULTI,
        whose converters are those of the select (a SINGLE row's caller may
        convert other expressions; explain() converts nothing)."""
        if (self.connection.vendor != "sqlite" or result_type != MULTI or not self.select
                or getattr(self.query, "explain_info", None)):
            return {}
        fields = [s[0] for s in self.select[:self.col_count]]
        return final_columns(self.connection, fields, super().get_converters(fields))

    def get_converters(self, expressions: Any) -> Any:
        """Django's converters, less JSONField.from_db_value on the columns
        whose values arrived parsed (it would only parse them again), and
        on SQLite less those the rows went through (_final_columns)."""
        converters = super().get_converters(expressions)
        if self._molt_final:
            return skip_converters(converters, self._molt_final, expressions)
        for i, expr in self._molt_json_parsed.items():
            if i in converters and i < len(expressions) and expressions[i] is expr:
                fns = [f for f in converters[i][0] if getattr(f, "__func__", None) is not JSONField.from_db_value]
                if fns:
                    converters[i] = (fns, converters[i][1])
                else:
                    del converters[i]
        return converters

    def _trimmed(self, chunks: Any) -> Any:
        """Chunks as cursor_iter gives them (extra select columns cut)."""
        if not self.has_extra_select:
            return chunks
        return ([r[:self.col_count] for r in chunk] for chunk in chunks)

    def _offload_write(self, sql: str, params: Any, result_type: Any) -> Any:
        from .conf import molt_settings

        if active_transaction(self.connection.alias) is not None:
            reason = "writes inside worker_transaction() go through the ORM"
        elif self.using not in molt_settings()["ALLOW_WRITE"] or on_event_loop():
            reason = "writes go through the ORM (alias not in MOLT_DB['ALLOW_WRITE'])"
        else:
            try:
                check_transaction(self.connection)
                q = worker_query(self.connection, sql, params)
                start = time.monotonic()
                count = run_write(q)
            except Fallback as e:
                reason = str(e)
            else:
                log_query(self.connection, q, time.monotonic() - start)
                events.record(self.connection.alias, sql, True)
                return count if result_type == ROW_COUNT else RowsCursor([], count)
        events.record(self.connection.alias, sql, False, reason)
        return self._orm_results(sql, params, result_type, False, GET_ITERATOR_CHUNK_SIZE)

    def _orm_results(self, sql: str, params: Any, result_type: Any, chunked_fetch: bool, chunk_size: int) -> Any:
        """The statement on Django's connection, as Django runs it."""
        cursor = self.connection.chunked_cursor() if chunked_fetch else self.connection.cursor()
        try:
            cursor.execute(sql, params)
        except Exception:
            cursor.close()
            raise
        return self._results(cursor, result_type, chunked_fetch, chunk_size)

    def _results(self, cursor: Any, result_type: Any, chunked_fetch: bool, chunk_size: int) -> Any:
        """What execute_sql returns for result_type, from an executed cursor."""
        if result_type == CURSOR:
            return cursor
        if result_type in (ROW_COUNT, NO_RESULTS):
            try:
                return cursor.rowcount if result_type == ROW_COUNT else None
            finally:
                cursor.close()
        if result_type == SINGLE:
            try:
                row = cursor.fetchone()
                return row[0:self.col_count] if row else row
            finally:
                cursor.close()
        result = base.cursor_iter(
            cursor, self.connection.features.empty_fetchmany_value,
            self.col_count if self.has_extra_select else None, chunk_size,
        )
        if not chunked_fetch or not self.connection.features.can_use_chunked_reads:
            return list(result)
        return result


_NAMES = ("SQLCompiler", "SQLInsertCompiler", "SQLDeleteCompiler", "SQLUpdateCompiler", "SQLAggregateCompiler")


def compilers_for(django_module: types.ModuleType) -> dict[str, type]:
    """The compiler classes of a backend: each of Django's, with
    OffloadCompiler after it."""
    def bases(cls: type) -> tuple[type, ...]:
        return (OffloadCompiler,) if cls is base.SQLCompiler else (cls, OffloadCompiler)

    return {name: type(name, bases(getattr(django_module, name)), {}) for name in _NAMES}


use_compiler_dicts()
use_compiler_instances()
