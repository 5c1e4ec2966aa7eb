"""Which Host and Origin headers the chat answers (chat_ui.origins.Site), without a server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from chat_ui.origins import CROSS_ORIGIN, NO_ORIGIN, UNKNOWN_HOST, Site
from mcp_server.config import ConfigError

PUBLIC = Site.of("https://tasks.example.com", port=8080, local=False)
LOCAL = Site.of("http://127.0.0.1:8000", port=8000, local=True)


def refusal(site: Site, method: str = "GET", path: str = "/", *, socket: bool = False, **headers: str):
    return site.refusal(method, path, Headers(headers=headers), socket=socket)


@pytest.mark.parametrize(
    ("site", "host", "origin"),
    [
        (PUBLIC, "tasks.example.com", "https://tasks.example.com"),
        (PUBLIC, "tasks.example.com:443", "https://tasks.example.com"),
        (PUBLIC, "127.0.0.1:8080", None),  # the Dapr sidecar next to the chat, which sends no Origin
        (LOCAL, "127.0.0.1:8000", "http://127.0.0.1:8000"),
        (LOCAL, "localhost:8000", "http://localhost:8000"),
        (LOCAL, "[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_the_chats_own_pages_pass(site, host, origin):
    headers = {"host": host} | ({"origin": origin} if origin else {})
    assert refusal(site, "POST", "/project/threads", **headers) is None
    if origin:
        assert refusal(site, path="/ws/socket.io/", socket=True, **headers) is None


@pytest.mark.parametrize(
    ("site", "host", "origin", "expected"),
    [
        (PUBLIC, "evil.example", "https://tasks.example.com", UNKNOWN_HOST),
        (PUBLIC, "tasks.example.com:8443", "https://tasks.example.com", UNKNOWN_HOST),
        (PUBLIC, "tasks.example.com", "http://tasks.example.com", CROSS_ORIGIN),  # the scheme is part of it
        (PUBLIC, "tasks.example.com", "https://sub.tasks.example.com", CROSS_ORIGIN),
        (PUBLIC, "127.0.0.1:8080", "http://127.0.0.1:8080", CROSS_ORIGIN),  # loopback pages only when local
        (LOCAL, "127.0.0.1:8000", "http://127.0.0.1:8001", CROSS_ORIGIN),  # same host, other port
        (LOCAL, "127.0.0.1:8000", "null", CROSS_ORIGIN),
        (LOCAL, "evil.example:8000", "http://evil.example:8000", UNKNOWN_HOST),  # DNS rebinding
        (LOCAL, "", "http://127.0.0.1:8000", UNKNOWN_HOST),
    ],
)
def test_other_hosts_and_origins_are_refused(site, host, origin, expected):
    assert refusal(site, "GET", "/", host=host, origin=origin) == expected
    assert refusal(site, path="/ws/socket.io/", socket=True, host=host, origin=origin) == expected


def test_a_socket_handshake_must_name_its_origin_and_a_foreign_referer_is_refused():
    assert refusal(LOCAL, path="/ws/socket.io/", socket=True, host="127.0.0.1:8000") == NO_ORIGIN
    elsewhere = "http://127.0.0.1:9999/page"
    assert refusal(LOCAL, "DELETE", "/project/thread", host="127.0.0.1:8000", referer=elsewhere) == CROSS_ORIGIN
    assert refusal(LOCAL, "GET", "/", host="127.0.0.1:8000", referer=elsewhere) is None  # a link to the chat
    assert refusal(LOCAL, "GET", "/health", host="10.1.2.3:8000") is None  # probes ask by the pod's address


def test_metrics_scrapers_ask_by_the_pods_address():
    assert refusal(PUBLIC, "GET", "/metrics", host="10.1.2.3:8080") is None
    assert refusal(PUBLIC, "POST", "/metrics", host="10.1.2.3:8080") == UNKNOWN_HOST
    assert refusal(PUBLIC, "GET", "/metrics/x", host="10.1.2.3:8080") == UNKNOWN_HOST


ALLOWED = ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"]


@given(
    st.sampled_from(ALLOWED).flatmap(
        lambda own: st.sampled_from([own, own + "/", own.upper(), own + ".evil.example", " " + own, own + "\t"])
    )
    | st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40)
)
def test_only_the_exact_origins_of_the_chat_pass(origin):
    verdict = refusal(LOCAL, "POST", "/auth/header", host="localhost:8000", origin=origin)
    assert verdict == (None if origin in ALLOWED else CROSS_ORIGIN)


def test_a_local_chat_with_a_public_address_is_refused():
    with pytest.raises(ConfigError, match="TASKFLOW_CHAT_PUBLIC_URL"):
        Site.of("https://tasks.example.com", port=8000, local=True)
