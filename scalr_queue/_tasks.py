"""Tasks: the per-task options and the signature checks that catch mistakes at enqueue time."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from difflib import get_close_matches
from typing import Any, Concatenate, Generic, cast, overload

from arq.worker import Function
from pydantic import TypeAdapter, ValidationError
from typing_extensions import ParamSpec, TypeVar

from ._errors import TaskArgumentsError, UnknownTaskError, WorkerModuleError
from ._limits import Limits, build_limits

TaskFunction = Callable[..., Coroutine[Any, Any, Any]]
Ctx = dict[str, Any]
"""What a task's first parameter receives: the worker's context (``redis``, ``job_id``, ``job_try``...)."""
# A task's arguments after ctx, and its result. The defaults keep a bare ``TaskSpec`` or ``Job``
# meaning "any task" / "any result", so code that does not care about the types need not spell them.
P = ParamSpec("P", default=...)
R = TypeVar("R", default=Any)
TaskFn = Callable[Concatenate[Ctx, P], Awaitable[R]]
"""A task function as type checkers see it: ``async def t(ctx, *args: P.args, **kwargs: P.kwargs) -> R``."""
_MISSING = inspect.Parameter.empty


@dataclass(frozen=True)
class TaskSignature:
    """What a caller may pass: published by workers to Redis so producers can check calls."""

    params: tuple[str, ...]
    required: frozenset[str]
    var_kw: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"params": list(self.params), "required": sorted(self.required), "var_kw": self.var_kw}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskSignature:
        return cls(tuple(data.get("params", ())), frozenset(data.get("required", ())), bool(data.get("var_kw")))

    def check(self, task: str, kwargs: Mapping[str, Any]) -> None:
        """Raise TaskArgumentsError for missing or unexpected keyword arguments."""
        missing = sorted(self.required - kwargs.keys())
        if missing:
            raise TaskArgumentsError(
                f"task {task!r} is missing required argument(s) {', '.join(map(repr, missing))}"
                f" (it takes: {', '.join(self.params) or 'no arguments'})"
            )
        if not self.var_kw:
            extra = [k for k in kwargs if k not in self.params]
            if extra:
                hints = []
                for name in extra:
                    close = get_close_matches(name, self.params, n=1)
                    hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
                raise TaskArgumentsError(
                    f"task {task!r} got unexpected argument(s) {', '.join(hints)}"
                    f" (it takes: {', '.join(self.params) or 'no arguments'})"
                )


def signature_of(fn: Callable[..., Any], name: str) -> TaskSignature:
    """The keyword arguments a task accepts after ``ctx``; rejects tasks without a ctx parameter."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:  # pragma: no cover - builtins only
        raise WorkerModuleError(f"task {name!r}: cannot read its signature ({exc})") from None
    params = list(sig.parameters.values())
    if not params or params[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_POSITIONAL,
    ):
        raise WorkerModuleError(f"task {name!r} must take ctx as its first argument: async def {name}(ctx, ...)")
    names: list[str] = []
    required: set[str] = set()
    var_kw = False
    for p in params[1:]:
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            names.append(p.name)
            if p.default is _MISSING:
                required.add(p.name)
    return TaskSignature(tuple(names), frozenset(required), var_kw)


class _Converters:
    """pydantic adapters built from a task's annotations, once, on first use."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        try:
            hints = typing.get_type_hints(fn, include_extras=True)
        except Exception:  # unresolvable forward references: pass values through as JSON gave them
            hints = {}
        params = list(inspect.signature(fn).parameters.values())[1:]
        self.params: dict[str, TypeAdapter[Any]] = {}
        for p in params:
            hint = hints.get(p.name)
            if hint is not None and hint is not Any:
                self.params[p.name] = TypeAdapter(hint)
        ret = hints.get("return")
        self.result: TypeAdapter[Any] | None = (
            TypeAdapter(ret) if ret is not None and ret is not Any and ret is not type(None) else None
        )


@dataclass
class TaskSpec(Function, Generic[P, R]):
    """A task plus its per-task overrides; also a valid arq ``Function``.

    ``no_retry`` lists exception types that send the job straight to the failed set.
    ``TaskSpec[P, R]`` remembers the task's arguments after ctx (``P``) and its result
    (``R``), so ``enqueue`` checks a call of a ``task(...)``-wrapped function like a call of
    the function itself.
    """

    no_retry: tuple[type[BaseException], ...] = ()
    signature: TaskSignature = field(default=TaskSignature((), frozenset()), compare=False)
    limits: Limits | None = None  # max_concurrent, concurrency_key, rate_limit (see scalr_queue._limits)
    _converters: _Converters | None = field(default=None, compare=False, repr=False)

    def converters(self) -> _Converters:
        if self._converters is None:
            self._converters = _Converters(self.coroutine)
        return self._converters

    def check_call(self, kwargs: Mapping[str, Any]) -> None:
        """Names and, where annotated, types of the arguments; raises TaskArgumentsError."""
        self.signature.check(self.name, kwargs)
        adapters = self.converters().params
        for key, value in kwargs.items():
            adapter = adapters.get(key)
            if adapter is None:
                continue
            try:
                adapter.validate_python(value)
            except ValidationError as exc:
                raise TaskArgumentsError(
                    f"argument {key!r} of task {self.name!r} is invalid: {_first_error(exc)}"
                ) from None

    def convert_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """JSON values -> the annotated types (datetime, Decimal, models...) before the call."""
        adapters = self.converters().params
        if not adapters:
            return kwargs
        out = dict(kwargs)
        for key, value in kwargs.items():
            adapter = adapters.get(key)
            if adapter is not None:
                try:
                    out[key] = adapter.validate_python(value)
                except ValidationError as exc:
                    raise TaskArgumentsError(
                        f"argument {key!r} of task {self.name!r} is invalid: {_first_error(exc)}"
                    ) from None
        return out

    def convert_result(self, value: Any) -> Any:
        adapter = self.converters().result
        if adapter is None or value is None:
            return value
        try:
            return adapter.validate_python(value)
        except ValidationError:
            return value


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return (f"{where}: " if where else "") + str(err["msg"])


def _seconds(value: float | timedelta | None) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds <= 0:
        raise ValueError("timeout must be greater than zero")
    return seconds


class _TaskDecorator:
    """What ``task(name=..., timeout=...)`` without a function returns: apply it to one."""

    def __init__(self, **options: Any) -> None:
        self._options = options

    def __call__(self, fn: TaskFn[P, R], /) -> TaskSpec[P, R]:
        # the spec wraps this very function, so it takes what the function takes and returns what it returns
        return cast("TaskSpec[P, R]", as_task_spec(fn, **self._options))


@overload
def task(
    fn: TaskFn[P, R],
    *,
    name: str | None = ...,
    timeout: float | timedelta | None = ...,
    max_tries: int | None = ...,
    no_retry: Iterable[type[BaseException]] = ...,
    keep_result: float | timedelta | None = ...,
    max_concurrent: int | None = ...,
    concurrency_key: str | None = ...,
    rate_limit: str | None = ...,
) -> TaskSpec[P, R]: ...


@overload
def task(
    fn: None = ...,
    *,
    name: str | None = ...,
    timeout: float | timedelta | None = ...,
    max_tries: int | None = ...,
    no_retry: Iterable[type[BaseException]] = ...,
    keep_result: float | timedelta | None = ...,
    max_concurrent: int | None = ...,
    concurrency_key: str | None = ...,
    rate_limit: str | None = ...,
) -> _TaskDecorator: ...


def task(
    fn: Callable[..., Awaitable[Any]] | None = None,
    *,
    name: str | None = None,
    timeout: float | timedelta | None = None,
    max_tries: int | None = None,
    no_retry: Iterable[type[BaseException]] = (),
    keep_result: float | timedelta | None = None,
    max_concurrent: int | None = None,
    concurrency_key: str | None = None,
    rate_limit: str | None = None,
) -> TaskSpec | _TaskDecorator:
    """Wrap a task with per-task overrides; use in ``tasks = [...]`` or as a decorator.

    The result keeps the task's signature for type checkers: ``enqueue(spec, ...)`` is checked
    like a call of the function.

    Limits hold across every worker and host: ``max_concurrent`` jobs running at once (per value
    of the keyword argument ``concurrency_key``, if given), ``rate_limit`` starts per second,
    minute or hour (``"100/m"``). A job over a limit waits in Redis without burning a try.

    Example::

        tasks = [send_invoice_email, task(rebuild_report, timeout=1800, max_tries=2,
                                          no_retry=(InvoiceMissing,)),
                 task(sync_customer, max_concurrent=1, concurrency_key="customer_id"),
                 task(call_partner_api, rate_limit="100/m")]
    """
    decorator = _TaskDecorator(
        name=name,
        timeout=timeout,
        max_tries=max_tries,
        no_retry=no_retry,
        keep_result=keep_result,
        max_concurrent=max_concurrent,
        concurrency_key=concurrency_key,
        rate_limit=rate_limit,
    )
    return decorator if fn is None else decorator(fn)


def as_task_spec(
    fn: Any,
    *,
    name: str | None = None,
    timeout: float | timedelta | None = None,
    max_tries: int | None = None,
    no_retry: Iterable[type[BaseException]] = (),
    keep_result: float | timedelta | None = None,
    max_concurrent: int | None = None,
    concurrency_key: str | None = None,
    rate_limit: str | None = None,
) -> TaskSpec:
    """Normalise a tasks-list entry (function, arq Function or TaskSpec) into a TaskSpec."""
    if isinstance(fn, TaskSpec):
        return fn
    if isinstance(fn, Function):
        return as_task_spec(
            fn.coroutine,
            name=fn.name,
            timeout=fn.timeout_s,
            max_tries=fn.max_tries,
            keep_result=fn.keep_result_s,
        )
    label = getattr(fn, "__name__", repr(fn))
    if not inspect.iscoroutinefunction(fn):
        kind = "a sync function" if callable(fn) else f"a {type(fn).__name__}"
        raise WorkerModuleError(
            f"task {label!r} is {kind}, not an async function: define it with 'async def {label}(ctx, ...)'"
        )
    task_name = name or fn.__name__
    if max_tries is not None and max_tries < 1:
        raise WorkerModuleError(f"task {task_name!r}: max_tries must be at least 1")
    for exc_type in no_retry:
        if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
            raise WorkerModuleError(f"task {task_name!r}: no_retry must list exception classes")
    keep = (
        None
        if keep_result is None
        else (keep_result.total_seconds() if isinstance(keep_result, timedelta) else float(keep_result))
    )
    signature = signature_of(fn, task_name)
    limits = build_limits(
        task_name, signature, max_concurrent=max_concurrent, concurrency_key=concurrency_key, rate_limit=rate_limit
    )
    return TaskSpec(
        name=task_name,
        coroutine=fn,
        timeout_s=_seconds(timeout),
        keep_result_s=keep,
        keep_result_forever=None,
        max_tries=max_tries,
        no_retry=tuple(no_retry),
        signature=signature,
        limits=limits,
    )


def build_task_map(entries: Iterable[Any]) -> dict[str, TaskSpec]:
    """Name -> TaskSpec; refuses duplicates with one clear line."""
    out: dict[str, TaskSpec] = {}
    for entry in entries:
        spec = as_task_spec(entry)
        if spec.name in out:
            raise WorkerModuleError(
                f"two tasks are named {spec.name!r}: task names must be unique (rename one, or use task(fn, name=...))"
            )
        out[spec.name] = spec
    return out


def did_you_mean(name: str, known: Iterable[str]) -> str:
    close = get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_task(name: str, known: Iterable[str], where: str) -> UnknownTaskError:
    known = sorted(known)
    return UnknownTaskError(
        f"unknown task {name!r}{did_you_mean(name, known)}: {where} has {', '.join(known) if known else 'no tasks'}"
    )
