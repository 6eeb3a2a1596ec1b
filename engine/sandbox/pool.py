"""Run sandboxed code in pre-started worker processes with a time limit and a memory cap.

Restricted compilation stops escapes, not runaways: ``while True: pass`` or
``sum(range(10**10))`` would hold a web or scheduler thread forever, and nothing in one process
bounds memory. Measured alternatives (trace hooks, async exceptions, SIGALRM) miss long C calls
or can be caught by the script; a separate process that is killed is the only thing that stops
every kind. So scripts, and expressions that could run away, run here:

* each worker is a fresh interpreter (``-I -S``, empty environment, no inherited descriptors
  except its two pipes) that imports RestrictedPython and the helpers once, then caps its
  address space (RLIMIT_AS), forbids file writes and core dumps, and arms a CPU-time limit
  before every call as a backstop should the parent be gone;
* a call that outlives ``timeout`` gets its worker SIGKILLed and replaced;
* values cross the pipes as JSON with tags for date, datetime, timedelta, Decimal and tuple.
  Never pickle: the parent must not unpickle what a sandboxed process produced.

Workers are started with ``subprocess`` (fork+exec) rather than ``multiprocessing``: exec is
safe from a threaded parent, the worker inherits no secrets from the web process's environment,
and a pool re-created after gunicorn forks does not touch the parent's helper processes.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import queue
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.errors import ScriptError
from engine.sandbox.compiler import (
    EXPRESSION_FILENAME,
    SCRIPT_FILENAME,
    CompiledCode,
    compile_expression,
    compile_script,
)

_FRAME = struct.Struct(">I")
# A reply larger than this is refused: the parent would otherwise allocate whatever a script
# chose to return. Task data that large does not belong in a workflow anyway.
MAX_REPLY_BYTES = 32 * 2**20
# Nesting deeper than this is refused in both directions (and keeps the codec's recursion short).
MAX_DEPTH = 64
_MAX_MESSAGE = 500
_STARTUP_SECONDS = 60.0
_ACQUIRE_SECONDS = 30.0
_TAG = "$t"


@dataclass(frozen=True)
class ScriptOutcome:
    """What a script changed in the variables it was given.

    Attributes:
        changed: names the script assigned or whose value it mutated, with their new values.
        deleted: names of variables it was given and deleted (or replaced with a function).
    """

    changed: dict[str, Any]
    deleted: frozenset[str]


# --- the wire format --------------------------------------------------------------------------


class WireError(TypeError):
    """A value that cannot cross the process boundary."""


def to_wire(value: object, where: str, depth: int = 0) -> object:
    """Encode a value as JSON-ready data; ``where`` names it in the error message.

    Raises:
        WireError: for a value of an unsupported type, a dict with non-text keys, or nesting
            deeper than ``MAX_DEPTH``.
    """
    if depth > MAX_DEPTH:
        raise WireError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    kind = type(value)
    if value is None or kind in (str, bool, int, float):
        return value
    if kind is list:
        return [to_wire(v, where, depth + 1) for v in value]  # type: ignore[attr-defined]
    if kind is dict:
        items = value.items()  # type: ignore[attr-defined]
        if not all(type(k) is str for k, _ in items):
            raise WireError(f"{where} is a dict whose keys are not all text")
        if _TAG in value:  # type: ignore[operator]
            # A genuine "$t" key would read back as a tag; send such a dict as pairs.
            return {_TAG: "dict", "v": [[k, to_wire(v, where, depth + 1)] for k, v in items]}
        return {k: to_wire(v, where, depth + 1) for k, v in items}
    if kind is datetime:
        return {_TAG: "datetime", "v": value.isoformat()}  # type: ignore[attr-defined]
    if kind is date:
        return {_TAG: "date", "v": value.isoformat()}  # type: ignore[attr-defined]
    if kind is timedelta:
        return {_TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}  # type: ignore[attr-defined]
    if kind is Decimal:
        return {_TAG: "decimal", "v": str(value)}
    if kind is tuple:
        return {_TAG: "tuple", "v": [to_wire(v, where, depth + 1) for v in value]}  # type: ignore[attr-defined]
    raise WireError(f"{where} has a value of type {kind.__name__}, which scripts cannot exchange")


def from_wire(data: object, depth: int = 0) -> object:
    """Decode what :func:`to_wire` produced; builds only plain data, dates and Decimals."""
    if depth > MAX_DEPTH + 1:
        raise WireError(f"the value is nested more than {MAX_DEPTH} levels deep")
    if isinstance(data, list):
        return [from_wire(v, depth + 1) for v in data]
    if not isinstance(data, dict):
        return data
    tag = data.get(_TAG)
    if tag is None:
        return {k: from_wire(v, depth + 1) for k, v in data.items()}
    payload = data.get("v")
    if tag == "date" and isinstance(payload, str):
        return date.fromisoformat(payload)
    if tag == "datetime" and isinstance(payload, str):
        return datetime.fromisoformat(payload)
    if tag == "timedelta" and isinstance(payload, list) and len(payload) == 3:
        days, seconds, micros = payload
        return timedelta(days=days, seconds=seconds, microseconds=micros)
    if tag == "decimal" and isinstance(payload, str):
        return Decimal(payload)
    if tag == "tuple" and isinstance(payload, list):
        return tuple(from_wire(v, depth + 1) for v in payload)
    if tag == "dict" and isinstance(payload, list):
        return {str(k): from_wire(v, depth + 1) for k, v in payload}
    raise WireError(f"unknown value tag {tag!r}")


def _dumps(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


# --- the worker process -------------------------------------------------------------------------


def _error_line(exc: BaseException) -> int | None:
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename in (EXPRESSION_FILENAME, SCRIPT_FILENAME):
            line = frame.lineno
    return line


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "…"


def run_code(request: dict[str, Any]) -> dict[str, Any]:
    """Serve one request inside a worker; returns the JSON-ready reply.

    Public so the worker protocol can be tested without processes; the pool is the only caller
    in production.
    """
    from engine.sandbox.helpers import (
        SandboxLimitError,
        frozen_now,
        sandbox_globals,
        using_calendar,
    )

    op = request["op"]
    compiled = (
        compile_expression(request["source"])
        if op == "evaluate"
        else compile_script(request["source"])
    )
    raw_vars: dict[str, Any] = request.get("variables") or {}
    moment = datetime.fromisoformat(request["now"]) if request.get("now") else None
    try:
        variables = {name: from_wire(value) for name, value in raw_vars.items()}
        namespace = sandbox_globals(variables)
        with frozen_now(moment), using_calendar(request.get("calendar")):
            if op == "evaluate":
                value = eval(compiled.code, namespace)  # noqa: S307 - restricted bytecode
                return {"ok": True, "value": to_wire(value, "the expression's value")}
            exec(compiled.code, namespace)  # noqa: S102 - restricted bytecode
        return {"ok": True, **_script_changes(raw_vars, namespace)}
    except (MemoryError, SandboxLimitError) as exc:
        message = str(exc) if isinstance(exc, SandboxLimitError) else "out of memory"
        return {"ok": False, "kind": "memory", "message": message, "line": _error_line(exc)}
    except BaseException as exc:  # noqa: BLE001 - everything the script raises is its error
        return {"ok": False, "kind": "error", "message": _describe(exc), "line": _error_line(exc)}


def _script_changes(raw_vars: dict[str, Any], namespace: dict[str, Any]) -> dict[str, Any]:
    changed: dict[str, Any] = {}
    deleted = [name for name in raw_vars if name not in namespace]
    for name, value in namespace.items():
        if name.startswith("_"):
            continue
        if callable(value):
            # Functions the script defined, or a helper it aliased, are not data; a variable
            # replaced by one is gone, as SpiffWorkflow's own environment treats it.
            if name in raw_vars:
                deleted.append(name)
            continue
        wire = to_wire(value, f"variable {name!r}")
        if name in raw_vars and _dumps(wire) == _dumps(raw_vars[name]):
            continue
        changed[name] = wire
    return {"changed": changed, "deleted": sorted(deleted)}


def _read_frame(fd: int) -> bytes | None:
    header = _read_exact(fd, _FRAME.size)
    if header is None:
        return None
    return _read_exact(fd, _FRAME.unpack(header)[0])


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, min(size - len(chunks), 1 << 20))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _write_frame(fd: int, payload: bytes) -> None:
    data = memoryview(_FRAME.pack(len(payload)) + payload)
    while data:
        written = os.write(fd, data)
        data = data[written:]


def _arm_cpu_backstop(seconds: float) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + seconds) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _worker_main(request_fd: int, reply_fd: int, config: dict[str, Any]) -> None:
    """Entry point of a worker process (started by SandboxPool, never called directly)."""
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Warm up before capping memory so imports and the calendar's first year do not count
    # against the script's share.
    import engine.sandbox.helpers as helpers

    helpers.is_working_day(date(2025, 1, 1))
    memory = int(config["memory_limit"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    cpu_budget = float(config["timeout"]) * 2 + 1
    _write_frame(reply_fd, b"ready")
    while True:
        payload = _read_frame(request_fd)
        if payload is None:
            return  # the parent closed the pipe: the pool is closing or the parent died
        _arm_cpu_backstop(cpu_budget)
        try:
            reply = _dumps(run_code(json.loads(payload)))
            if len(reply) > MAX_REPLY_BYTES:
                reply = _dumps(
                    {
                        "ok": False,
                        "kind": "memory",
                        "message": f"the result is {len(reply)} bytes; "
                        f"the limit is {MAX_REPLY_BYTES}",
                        "line": None,
                    }
                )
        except MemoryError:
            reply = b'{"ok":false,"kind":"memory","message":"out of memory","line":null}'
        except Exception as exc:  # noqa: BLE001 - e.g. a value that cannot be encoded
            reply = _dumps({"ok": False, "kind": "error", "message": _describe(exc), "line": None})
        _write_frame(reply_fd, reply)


_BOOTSTRAP = (
    "import json, sys\n"
    "sys.path[:] = json.loads(sys.argv[3])\n"
    "from engine.sandbox.pool import _worker_main\n"
    "_worker_main(int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[4]))\n"
)


def _worker_path() -> list[str]:
    # The worker runs with -I -S (no site, no environment), so it gets the parent's resolved
    # search path, with the directory holding the engine package first: editable installs
    # resolve it through an import hook that -S leaves out.
    root = str(Path(__file__).resolve().parent.parent.parent)
    paths = [root]
    for entry in sys.path:
        absolute = os.path.abspath(entry) if entry else os.getcwd()
        if os.path.exists(absolute) and absolute not in paths:
            paths.append(absolute)
    return paths


# --- the parent side ----------------------------------------------------------------------------


class _Timeout(Exception):
    pass


class _WorkerGone(Exception):
    pass


class _Worker:
    """One worker process and the parent's ends of its two pipes."""

    def __init__(self, memory_limit: int, timeout: float) -> None:
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        config = json.dumps({"memory_limit": memory_limit, "timeout": timeout})
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and code
                [
                    sys.executable,
                    "-I",
                    "-S",
                    "-c",
                    _BOOTSTRAP,
                    str(request_r),
                    str(reply_w),
                    json.dumps(_worker_path()),
                    config,
                ],
                pass_fds=(request_r, reply_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env={"TZ": "UTC"},
                cwd="/",
                start_new_session=True,
            )
        except BaseException:
            for fd in (request_r, request_w, reply_r, reply_w):
                os.close(fd)
            raise
        os.close(request_r)
        os.close(reply_w)
        self.request_fd = request_w
        self.reply_fd = reply_r
        self.poller = select.poll()  # not select(): descriptors may exceed 1024 in a web server
        self.poller.register(reply_r, select.POLLIN)
        self.closed = False

    def send(self, payload: bytes) -> None:
        _write_frame(self.request_fd, payload)

    def receive(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        header = self._read(_FRAME.size, deadline)
        (size,) = _FRAME.unpack(header)
        if size > MAX_REPLY_BYTES:
            raise _WorkerGone(f"the worker sent a {size}-byte reply")
        # The work is done once the header arrives; give the transfer its own allowance.
        return self._read(size, time.monotonic() + max(timeout, 10.0))

    def _read(self, size: int, deadline: float) -> bytes:
        data = bytearray()
        while len(data) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.poller.poll(math.ceil(remaining * 1000)):
                raise _Timeout
            chunk = os.read(self.reply_fd, min(size - len(data), 1 << 20))
            if not chunk:
                raise _WorkerGone("the worker closed its pipe")
            data += chunk
        return bytes(data)

    def stop(self) -> int | None:
        """Kill the process (if running), reap it and close the pipes; returns its exit status."""
        if not self.closed:
            self.closed = True
            if self.process.poll() is None:
                self.process.kill()
            for fd in (self.request_fd, self.reply_fd):
                with contextlib.suppress(OSError):
                    os.close(fd)
        try:
            return self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None


def _decoded(decode: Callable[[], Any]) -> Any:
    # What comes back was produced by sandboxed code: anything malformed is the script's error.
    try:
        return decode()
    except (ValueError, TypeError, RecursionError, ArithmeticError) as exc:
        raise ScriptError(f"the script's result could not be read: {exc}") from None


def _death_error(status: int | None, memory_limit: int) -> ScriptError:
    if status == -signal.SIGXCPU:
        return ScriptError("stopped by the CPU-time limit: the script ran too long", kind="timeout")
    how = f"signal {-status}" if status is not None and status < 0 else f"status {status}"
    return ScriptError(
        f"the script's process ended abruptly ({how}); it most likely ran out of memory "
        f"(limit {memory_limit // 2**20} MiB)",
        kind="memory",
    )


class SandboxPool:
    """Pre-started worker processes that evaluate compiled code under limits.

    Thread-safe: any number of threads may call :meth:`evaluate` and :meth:`execute`; each
    worker serves one call at a time and idle workers wait in a queue.

    Args:
        workers: number of worker processes.
        timeout: seconds a call may run before its worker is killed.
        memory_limit: address-space cap of each worker, in bytes.
    """

    def __init__(
        self, workers: int = 2, timeout: float = 2.0, memory_limit: int = 512 * 2**20
    ) -> None:
        if workers < 1 or timeout <= 0 or memory_limit < 64 * 2**20:
            raise ValueError("SandboxPool needs workers >= 1, timeout > 0, memory_limit >= 64 MiB")
        self.size = workers
        self.timeout = float(timeout)
        self.memory_limit = int(memory_limit)
        self._owner_pid = os.getpid()
        self._lock = threading.Lock()
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._closed = False
        started = [self._start() for _ in range(workers)]
        self._live = len(started)
        for worker in started:
            try:
                self._await_ready(worker)
            except ScriptError:
                self.close()
                raise
            self._idle.put(worker)

    # -- public API --

    def evaluate(
        self, code: CompiledCode, variables: dict[str, Any], *, now: datetime | None = None
    ) -> object:
        """Evaluate a compiled expression in a worker.

        Args:
            code: from :func:`compile_expression`.
            variables: the names it may read; only those it does read are sent.
            now: the engine clock's time for ``now()``/``today()`` (None: the real time).

        Returns:
            The expression's value.

        Raises:
            ScriptError: kind "timeout", "memory" or "error" (with the line and the exception).
        """
        reply = self._call("evaluate", code, variables, now)
        return _decoded(lambda: from_wire(reply.get("value")))

    def execute(
        self, code: CompiledCode, variables: dict[str, Any], *, now: datetime | None = None
    ) -> ScriptOutcome:
        """Run a compiled script in a worker.

        Args:
            code: from :func:`compile_script`.
            variables: the task data; only the names the script reads are sent.
            now: the engine clock's time for ``now()``/``today()`` (None: the real time).

        Returns:
            The variables it assigned or mutated, and those it deleted.

        Raises:
            ScriptError: kind "timeout", "memory" or "error" (with the line and the exception).
        """
        reply = self._call("execute", code, variables, now)
        changed = reply.get("changed") or {}
        return ScriptOutcome(
            changed=_decoded(lambda: {str(k): from_wire(v) for k, v in changed.items()}),
            deleted=frozenset(str(n) for n in reply.get("deleted") or ()),
        )

    def close(self) -> None:
        """Stop every worker. Calls still running fail; later calls raise ScriptError."""
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        while True:
            try:
                self._idle.get_nowait()
            except queue.Empty:
                break
        if os.getpid() != self._owner_pid:
            return  # a forked copy: these processes belong to the parent
        for worker in workers:
            worker.stop()

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals --

    def _call(
        self, op: str, code: CompiledCode, variables: dict[str, Any], now: datetime | None
    ) -> dict[str, Any]:
        from engine.sandbox.helpers import calendar_wire

        sent: dict[str, Any] = {}
        for name in code.names_read:
            if name in variables and not name.startswith("_"):
                try:
                    sent[name] = to_wire(variables[name], f"variable {name!r}")
                except WireError as exc:
                    raise ScriptError(f"{exc}", kind="error") from None
        request = {
            "op": op,
            "source": code.source,
            "variables": sent,
            "now": now.isoformat() if now is not None else None,
            # The caller's working-day calendar: workers have no database (helpers.py).
            "calendar": calendar_wire(),
        }
        payload = _dumps(request)
        worker: _Worker | None = self._acquire()
        try:
            try:
                worker.send(payload)
            except OSError:
                # It died while idle (killed from outside, say); one fresh worker, one retry.
                self._discard(worker)
                worker = None
                worker = self._replacement()
                worker.send(payload)
            try:
                raw = worker.receive(self.timeout)
            except _Timeout:
                self._discard(worker)
                worker = None
                raise ScriptError(
                    f"stopped after {self.timeout:g} s: the script ran too long", kind="timeout"
                ) from None
            except _WorkerGone:
                status = self._discard(worker)
                worker = None
                raise _death_error(status, self.memory_limit) from None
            reply = json.loads(raw)
            if not reply.get("ok"):
                kind = str(reply.get("kind") or "error")
                if kind == "memory":
                    # Its heap may be fragmented near the cap; start the next call afresh.
                    self._discard(worker)
                    worker = None
                line = reply.get("line")
                raise ScriptError(
                    str(reply.get("message") or "the script failed"),
                    line=line if isinstance(line, int) else None,
                    kind=kind,
                )
            return reply
        except (ValueError, RecursionError) as exc:
            raise ScriptError(f"the script's result could not be read: {exc}") from None
        finally:
            self._release(worker)

    def _start(self) -> _Worker:
        worker = _Worker(self.memory_limit, self.timeout)
        with self._lock:
            self._all.add(worker)
        return worker

    def _await_ready(self, worker: _Worker) -> None:
        try:
            greeting = worker.receive(_STARTUP_SECONDS)
        except (_Timeout, _WorkerGone):
            greeting = b""
        if greeting != b"ready":
            self._discard(worker)
            raise ScriptError("a sandbox worker process failed to start", kind="error")

    def _spawn(self) -> _Worker:
        worker = self._start()
        self._await_ready(worker)
        return worker

    def _acquire(self) -> _Worker:
        while True:
            with self._lock:
                if self._closed:
                    raise ScriptError("the sandbox pool is closed", kind="error")
            try:
                return self._idle.get_nowait()
            except queue.Empty:
                pass
            with self._lock:
                grow = self._live < self.size
                if grow:
                    self._live += 1
            if grow:
                return self._replacement(counted=True)
            try:
                return self._idle.get(timeout=_ACQUIRE_SECONDS)
            except queue.Empty:
                raise ScriptError(
                    f"no sandbox worker became free within {_ACQUIRE_SECONDS:g} s", kind="timeout"
                ) from None

    def _replacement(self, *, counted: bool = False) -> _Worker:
        if not counted:
            with self._lock:
                self._live += 1
        try:
            return self._spawn()
        except BaseException:
            with self._lock:
                self._live -= 1
            raise

    def _discard(self, worker: _Worker) -> int | None:
        with self._lock:
            self._all.discard(worker)
            self._live -= 1
        return worker.stop()

    def _release(self, worker: _Worker | None) -> None:
        if worker is None:
            return
        with self._lock:
            closed = self._closed
        if closed:
            worker.stop()
        else:
            self._idle.put(worker)


# --- the per-process pool -------------------------------------------------------------------------

_pool: SandboxPool | None = None
_pool_pid: int | None = None
_pool_lock = threading.Lock()


def _settings() -> dict[str, Any]:
    return {
        "workers": int(os.environ.get("QORGAU_SANDBOX_WORKERS", "2")),
        "timeout": float(os.environ.get("QORGAU_SANDBOX_TIMEOUT", "2.0")),
        "memory_limit": int(os.environ.get("QORGAU_SANDBOX_MEMORY_MB", "512")) * 2**20,
    }


def get_pool() -> SandboxPool:
    """The process's sandbox pool, started on first use.

    A new pool is started when the process id changes (gunicorn forks its workers after
    importing the app); the parent's pool is left to the parent. Sized from the environment
    variables QORGAU_SANDBOX_WORKERS, QORGAU_SANDBOX_TIMEOUT (seconds) and
    QORGAU_SANDBOX_MEMORY_MB. Closed at interpreter exit.
    """
    global _pool, _pool_pid
    pool = _pool
    if pool is not None and _pool_pid == os.getpid():
        return pool
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = SandboxPool(**_settings())
            _pool_pid = os.getpid()
        return _pool


def _close_at_exit() -> None:
    if _pool is not None and _pool_pid == os.getpid():
        _pool.close()


def _after_fork_in_child() -> None:
    # The lock may have been held by another thread at the moment of the fork.
    global _pool, _pool_lock
    _pool_lock = threading.Lock()
    _pool = None


atexit.register(_close_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
