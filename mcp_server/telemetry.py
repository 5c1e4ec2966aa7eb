"""What a running TaskFlow shows of itself: OpenTelemetry traces, Prometheus metrics and structured logs.

Spans are made only once a tracer provider is in use (`trace_with`): the OTLP exporter's, when
OTEL_EXPORTER_OTLP_ENDPOINT is set. Until then each hop skips them after one flag check, which is cheaper than the
API's no-op spans. A request keeps one trace across processes: the tool call's context travels in the MCP request's
`_meta`, an event's in its `traceparent`.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache, wraps
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider
    from prometheus_client import Counter, Histogram
    from prometheus_client.metrics_core import Metric
    from sqlmodel import Session

    from mcp_server.config import Settings

# OpenTelemetry and the Prometheus client are imported on first use: a command that records nothing (listing tasks,
# say) never loads them.
_tracing = False  # whether spans are recorded at all

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENESS_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)


@dataclass(frozen=True)
class Metrics:
    tool_calls: Histogram
    chat_turns: Counter
    model_rounds: Counter
    consumer_failures: Counter
    reminder_lateness: Histogram


_metrics: Metrics | None = None
_metrics_made = threading.Lock()  # a family registered twice would be refused


def metrics() -> Metrics:
    """This process's metrics, registered with Prometheus's default registry the first time they are needed."""
    global _metrics
    if _metrics is None:
        with _metrics_made:
            if _metrics is None:
                _metrics = _register_metrics()
    return _metrics


def _register_metrics() -> Metrics:
    from prometheus_client import Counter, Histogram

    return Metrics(
        tool_calls=Histogram(
            "taskflow_tool_call_seconds",
            "Task tool calls served, by tool and outcome",
            ["tool", "outcome"],
            buckets=LATENCY_BUCKETS,
        ),
        chat_turns=Counter("taskflow_chat_turns", "Chat turns run by the agent, by outcome", ["outcome"]),
        model_rounds=Counter("taskflow_model_rounds", "Model rounds (one request to the model each) within chat turns"),
        consumer_failures=Counter(
            "taskflow_consumer_failures",
            "Event handler failures, by consumer and the error's kind",
            ["consumer", "kind"],
        ),
        reminder_lateness=Histogram(
            "taskflow_reminder_lateness_seconds",
            "How long after its time each reminder fired",
            buckets=LATENESS_BUCKETS,
        ),
    )


@cache
def _tracer() -> Tracer:
    from opentelemetry import trace

    return trace.get_tracer("taskflow")


def _loaded_trace_api() -> ModuleType | None:
    """OpenTelemetry's trace API if anything has loaded it; until then no span can be current."""
    return sys.modules.get("opentelemetry.trace")


# Logs.


class JsonFormatter(logging.Formatter):
    """One JSON object per line, carrying the current trace and span ids so logs join their trace."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        trace = _loaded_trace_api()
        if trace is not None and (span := trace.get_current_span().get_span_context()).is_valid:
            entry["trace_id"] = trace.format_trace_id(span.trace_id)
            entry["span_id"] = trace.format_span_id(span.span_id)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


def configure_logging(log_format: Literal["text", "json"], level: int = logging.WARNING) -> None:
    """Send log records to stderr, one line each: readable text, or JSON for log collectors."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def uvicorn_log_config() -> dict[str, Any] | None:
    """uvicorn's own logging setup, or None to leave its records to ours when the logs are JSON."""
    from uvicorn.config import LOGGING_CONFIG

    json_logs = any(isinstance(handler.formatter, JsonFormatter) for handler in logging.getLogger().handlers)
    return None if json_logs else LOGGING_CONFIG


# Traces.


def configure(settings: Settings) -> None:
    """Logs as configured; traces exported over OTLP when an endpoint is configured (else none are made)."""
    configure_logging(settings.log_format)
    if settings.otel_exporter_otlp_endpoint and not _tracing:
        # The SDK is imported only here: a process that exports nothing never loads it.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import OTELResourceDetector, Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        # The exporter reads the endpoint (and OTEL_EXPORTER_OTLP_HEADERS, say) from the standard variables, and
        # OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES name the process when set.
        resource = Resource.create({"service.name": "taskflow"}).merge(OTELResourceDetector().detect())
        provider = SdkTracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace_with(provider)


def trace_with(provider: TracerProvider) -> None:
    """Record spans through `provider` from now on (once per process, as OpenTelemetry allows)."""
    global _tracing
    from opentelemetry import trace

    trace.set_tracer_provider(provider)
    _tracing = True


def tracing() -> bool:
    return _tracing


def _span(name: str, **options: Any) -> AbstractContextManager[Any]:
    return _tracer().start_as_current_span(name, **options) if _tracing else nullcontext()


@contextmanager
def child_span(name: str) -> Iterator[None]:
    """A span for work inside a traced request only: background loops (relay claims, polls) start no traces."""
    if not _tracing or not _loaded_trace_api().get_current_span().is_recording():  # type: ignore[union-attr]
        yield
        return
    with _tracer().start_as_current_span(name):
        yield


@contextmanager
def chat_turn() -> Iterator[None]:
    """The span and count of one chat turn."""
    with _span("chat turn"):
        try:
            yield
        except BaseException:
            metrics().chat_turns.labels("error").inc()
            raise
        metrics().chat_turns.labels("ok").inc()


@contextmanager
def model_round(number: int) -> Iterator[None]:
    """The span and count of one model round: the request to the model and the tool calls it asked for."""
    metrics().model_rounds.inc()
    with _span("model round", attributes={"taskflow.round": number}):
        yield


@contextmanager
def calling_tool(name: str) -> Iterator[dict[str, str]]:
    """The caller's span of a tool call; yields the trace context to send in the request's `_meta`."""
    if not _tracing:
        yield {}
        return
    from opentelemetry.trace import SpanKind

    with _tracer().start_as_current_span(f"call {name}", kind=SpanKind.CLIENT, attributes={"mcp.tool": name}):
        yield current_trace_context()


def current_trace_context() -> dict[str, str]:
    """The current span's context as W3C trace headers (traceparent), to travel with a message or an event."""
    carrier: dict[str, str] = {}
    if _loaded_trace_api() is not None:
        from opentelemetry.propagate import inject

        inject(carrier)
    return carrier


R = TypeVar("R")


class _ToolServer(Protocol):
    def get_context(self) -> Any: ...


ToolCall = Callable[[Any, str, dict[str, Any]], Awaitable[R]]

# The `_meta` of a tool call answered outside the SDK's request handling (direct_calls), which has no request
# context to read it from; unset for a call the SDK's session serves.
direct_call_meta: ContextVar[dict[str, Any] | None] = ContextVar("taskflow_direct_call_meta")


def served_tool_call(call: ToolCall[R]) -> ToolCall[R]:
    """Decorates a tool server's `call_tool`: a span continuing the caller's trace, and the latency histogram."""

    @wraps(call)
    async def observed(server: _ToolServer, name: str, arguments: dict[str, Any]) -> R:
        outcome = "error"
        started = time.perf_counter()
        try:
            with _served_span(server, name):
                result = await call(server, name, arguments)
            outcome = "ok"
            return result
        finally:
            metrics().tool_calls.labels(name, outcome).observe(time.perf_counter() - started)

    return observed


def _served_span(server: _ToolServer, name: str) -> AbstractContextManager[Any]:
    """The server's span of a tool call, continuing the trace the caller sent in `_meta`."""
    if not _tracing:
        return nullcontext()
    from opentelemetry.propagate import extract
    from opentelemetry.trace import SpanKind

    try:
        carried = direct_call_meta.get()
    except LookupError:
        meta = server.get_context().request_context.meta
        carried = None if meta is None else meta.model_extra or {}
    parent = extract(carried) if carried is not None else None
    attributes = {"mcp.tool": name}
    return _tracer().start_as_current_span(f"tool {name}", context=parent, kind=SpanKind.SERVER, attributes=attributes)


class _Outgoing(Protocol):
    @property
    def topic(self) -> str: ...

    @property
    def id(self) -> int: ...

    @property
    def cloudevent(self) -> dict[str, Any]: ...


Out = TypeVar("Out", bound=_Outgoing)


async def traced_publish(publish: Callable[[Sequence[Out]], Awaitable[set[int]]], events: Sequence[Out]) -> set[int]:
    """Publish with a span per event continuing the trace that wrote it; the events carry on the publish span."""
    if not _tracing:
        return await publish(events)
    from opentelemetry import trace
    from opentelemetry.propagate import extract, inject
    from opentelemetry.trace import SpanKind, Status, StatusCode

    spans: list[Span] = []
    sent: list[Out] = []
    for event in events:
        span = _tracer().start_span(
            f"publish {event.topic}",
            context=extract(event.cloudevent),
            kind=SpanKind.PRODUCER,
            attributes={"messaging.destination.name": event.topic, "messaging.message.id": str(event.id)},
        )
        carrier: dict[str, str] = {}
        inject(carrier, context=trace.set_span_in_context(span))
        spans.append(span)
        sent.append(replace(event, cloudevent=event.cloudevent | carrier) if carrier else event)  # type: ignore[type-var]
    failed: set[int] = {event.id for event in events}
    try:
        failed = await publish(sent)
    finally:
        for event, span in zip(events, spans, strict=True):
            if event.id in failed:
                span.set_status(Status(StatusCode.ERROR, "not published"))
            span.end()
    return failed


class _Event(Protocol):
    @property
    def id(self) -> str: ...


E = TypeVar("E", bound=_Event)


def traced_handler(consumer: str, handler: Callable[[Session, E], None]) -> Callable[[Session, E], None]:
    """A consumer's handler in a span continuing the event's trace, its failures counted by kind."""

    @wraps(handler)
    def handle(session: Session, event: E) -> None:
        with _handling_span(consumer, event):
            try:
                handler(session, event)
            except Exception as error:
                metrics().consumer_failures.labels(consumer, type(error).__name__).inc()
                raise

    return handle


def _handling_span(consumer: str, event: _Event) -> AbstractContextManager[Any]:
    """A consumer's span of one event, continuing the event's trace."""
    if not _tracing:
        return nullcontext()
    from opentelemetry.propagate import extract
    from opentelemetry.trace import SpanKind

    traceparent = getattr(event, "traceparent", None)
    parent = extract({"traceparent": traceparent}) if isinstance(traceparent, str) else None
    attributes = {"taskflow.consumer": consumer, "messaging.message.id": event.id}
    return _tracer().start_as_current_span(
        f"handle {consumer}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    )


def reminder_fired(lateness: timedelta) -> None:
    metrics().reminder_lateness.observe(max(0.0, lateness.total_seconds()))


# Metrics.

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Fixed:
    """A collector of figures read for one scrape."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def exposition(figures: Iterable[Metric] = ()) -> bytes:
    """This process's metrics in Prometheus text format, followed by `figures` read for this scrape."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

    metrics()  # every family shows, at zero before its first use
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_Fixed(figures))  # type: ignore[arg-type]
    return generate_latest(REGISTRY) + generate_latest(scrape)
