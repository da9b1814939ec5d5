"""Who is who: identity modes, signed visitor ids and their cookie, API tokens, the flags."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from chatui.api.auth import bearer_check, token_owners
from chatui.api.errors import Unauthorized
from chatui.config import Config, parse_config, read_api_tokens
from chatui.errors import ConfigError
from chatui.network import TrustedProxies, address_key
from chatui.runtime import identity_of
from chatui.users import VisitorIds, load_secret
from chatui.visitors import COOKIE, ClientAddresses, VisitorCookies, visitor_owner

SECRET = b"0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(("config", "mode"), [
    (Config(), "local"),
    (Config(host="localhost"), "local"),
    (Config(host="0.0.0.0"), "anonymous"),
    (Config(host="0.0.0.0", anonymous_users=False), "local"),
    (Config(anonymous_users=True), "anonymous"),
    (Config(auth=(("alice", "pw"),)), "login"),
    (Config(auth=(("alice", "pw"),), share=True, anonymous_users=True), "login"),
])
def test_identity_modes(config: Config, mode: str) -> None:
    assert identity_of(config) == mode


def test_a_visitor_id_is_trusted_only_with_its_signature() -> None:
    ids = VisitorIds(SECRET)
    value = ids.new()
    owner = ids.owner(value)
    assert owner is not None and owner.startswith("anon:")
    assert ids.owner(value) == owner  # the same cookie is the same visitor
    assert ids.owner(ids.new()) != owner
    visitor, _, signature = value.partition(".")
    forged = [
        None, "", "local", "alice", visitor, f"{visitor}.", f"{visitor}.{'0' * 32}",
        f"someone-else.{signature}", f"{visitor}.{signature}x",
    ]
    assert [ids.owner(f) for f in forged] == [None] * len(forged)
    assert VisitorIds(b"another secret of enough length").owner(value) is None


def test_the_visitor_secret_is_kept_private_and_survives_a_restart(tmp_path: Path) -> None:
    secret = load_secret(tmp_path / "data")
    assert len(secret) == 32
    assert load_secret(tmp_path / "data") == secret
    mode = stat.S_IMODE((tmp_path / "data" / "visitor-secret").stat().st_mode)
    assert mode == 0o600
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["visitor-secret"]


def test_api_tokens_file(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# who:token\nalice: tok-a \n\nbob:tok-b:with-colon\n")
    assert read_api_tokens(tokens) == (("alice", "tok-a"), ("bob", "tok-b:with-colon"))
    tokens.write_text("alice:tok\nbob:tok\n")
    with pytest.raises(ConfigError, match="same token"):
        read_api_tokens(tokens)
    tokens.write_text("alice tok\n")
    with pytest.raises(ConfigError, match="line 1: expected USER:TOKEN"):
        read_api_tokens(tokens)


def test_tokens_map_to_their_owners_and_the_single_token_to_local() -> None:
    config = Config(host="0.0.0.0", api_token="root-token",
                    api_tokens=(("alice", "tok-a"), ("bob", "tok-b")))
    assert token_owners(config) == {"root-token": "local", "tok-a": "alice", "tok-b": "bob"}
    assert token_owners(Config(host="0.0.0.0", api_tokens=(("alice", "tok-a"),))) == {
        "tok-a": "alice"}  # users' tokens are enough to expose the API
    assert token_owners(Config()) == {}  # loopback, no token: open, as before
    with pytest.raises(ConfigError, match="--api-token"):
        token_owners(Config(host="0.0.0.0"))

    authorize = bearer_check(token_owners(config))
    seen = {}
    for token in ("tok-a", "tok-b", "root-token"):
        request = Request({"type": "http", "headers": [
            (b"authorization", f"Bearer {token}".encode())]})
        authorize(request)
        seen[token] = request.state.chatui_owner
    assert seen == {"tok-a": "alice", "tok-b": "bob", "root-token": "local"}
    with pytest.raises(Unauthorized):
        authorize(Request({"type": "http", "headers": [(b"authorization", b"Bearer tok-c")]}))


def test_flags_and_variables(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("alice:tok-a\n")
    config = parse_config([
        "--api-tokens-file", str(tokens), "--anonymous-users", "--user-concurrency", "1",
        "--user-requests-per-minute", "5", "--user-max-documents", "7",
    ], environ={})
    assert config.api_tokens == (("alice", "tok-a"),)
    assert config.anonymous_users is True
    assert (config.user_concurrency, config.user_requests_per_minute,
            config.user_max_documents) == (1, 5, 7)
    env = {"CHATUI_ANONYMOUS_USERS": "0", "CHATUI_USER_CONCURRENCY": "4",
           "CHATUI_API_TOKENS_FILE": str(tokens)}
    config = parse_config([], environ=env)
    assert config.anonymous_users is False and config.user_concurrency == 4
    assert config.api_tokens == (("alice", "tok-a"),)
    assert parse_config(["--no-anonymous-users"], environ={}).anonymous_users is False
    assert parse_config([], environ={}).anonymous_users is None


# ----- the visitor cookie at the web edge --------------------------------------------


@pytest.fixture
def visitor_app() -> tuple[Starlette, VisitorIds]:
    ids = VisitorIds(SECRET)
    owner = visitor_owner(ids)

    def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"owner": owner(request)})

    app = Starlette(routes=[Route("/whoami", whoami), Route("/api/v1/whoami", whoami)])
    app.add_middleware(VisitorCookies, ids=ids)
    return app, ids


def test_a_new_browser_becomes_a_visitor_at_its_first_request(
    visitor_app: tuple[Starlette, VisitorIds],
) -> None:
    app, ids = visitor_app
    client = TestClient(app)
    first = client.get("/whoami")
    owner = first.json()["owner"]
    assert owner.startswith("anon:")
    set_cookie = first.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    assert ids.owner(client.cookies[COOKIE]) == owner

    again = client.get("/whoami")  # the client keeps the cookie: the same visitor
    assert again.json()["owner"] == owner
    assert "set-cookie" not in again.headers

    stranger = TestClient(app)
    assert stranger.get("/whoami").json()["owner"] not in (None, owner)


def test_a_forged_cookie_gets_a_fresh_visitor_not_the_one_it_names(
    visitor_app: tuple[Starlette, VisitorIds],
) -> None:
    app, ids = visitor_app
    client = TestClient(app)
    victim = ids.new()
    visitor, _, _ = victim.partition(".")
    forged = f"{visitor}.{'f' * 32}"
    response = client.get("/whoami", headers={"Cookie": f"theme=dark; {COOKIE}={forged}"})
    assert response.json()["owner"] not in (None, ids.owner(victim))
    assert response.json()["owner"] == ids.owner(response.cookies[COOKIE])


def test_the_rest_api_gets_no_visitor_cookie(visitor_app: tuple[Starlette, VisitorIds]) -> None:
    client = TestClient(visitor_app[0])
    response = client.get("/api/v1/whoami")
    assert response.json() == {"owner": None}
    assert "set-cookie" not in response.headers


# ----- where a request comes from: trusted proxies and X-Forwarded-For ---------------------


PROXIES = TrustedProxies(["10.0.0.5", "10.1.0.0/16", "fd00::/8"])


@pytest.mark.parametrize(("peer", "forwarded", "client"), [
    ("192.0.2.1", [], "192.0.2.1"),
    ("192.0.2.1", ["203.0.113.9"], "192.0.2.1"),  # not a proxy: its header means nothing
    ("10.0.0.5", [], "10.0.0.5"),
    ("10.0.0.5", ["203.0.113.9"], "203.0.113.9"),
    ("10.0.0.5", ["6.6.6.6, 203.0.113.9"], "203.0.113.9"),  # the left part is the client's
    ("10.0.0.5", ["6.6.6.6", "203.0.113.9, 10.1.2.3"], "203.0.113.9"),  # proxy chain
    ("10.0.0.5", ["203.0.113.9:5555"], "203.0.113.9"),
    ("10.0.0.5", ["[2001:db8::7]:443"], "2001:db8::7"),
    ("fd00::1", ["2001:db8::7"], "2001:db8::7"),
    ("10.0.0.5", ["10.1.0.1, 10.0.0.5"], "10.1.0.1"),  # only proxies: the first one
    ("10.0.0.5", ["203.0.113.9, not-an-address"], "10.0.0.5"),  # junk: the proxy's own
    ("10.0.0.5", [""], "10.0.0.5"),
])
def test_the_client_is_the_right_most_address_no_trusted_proxy_wrote(
    peer: str, forwarded: list[str], client: str
) -> None:
    assert PROXIES.client(peer, forwarded) == client


def test_without_trusted_proxies_the_header_is_ignored_and_junk_is_refused() -> None:
    nobody = TrustedProxies()
    assert not nobody
    assert nobody.client("127.0.0.1", ["203.0.113.9"]) == "127.0.0.1"
    with pytest.raises(ValueError, match="not an IP address or network"):
        TrustedProxies(["proxy.example.com"])


def test_address_keys_fold_an_ipv6_host_into_its_64() -> None:
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("2001:db8:0:1::5") == address_key("2001:0db8:0:1:abcd::1")
    assert address_key("2001:db8:0:1::5") != address_key("2001:db8:0:2::5")
    assert address_key("testclient") == "testclient"


def test_trusted_proxies_flag_and_variable() -> None:
    assert parse_config([], environ={}).trusted_proxies == ()
    config = parse_config(["--trusted-proxies", "10.0.0.5, 10.1.0.0/16"], environ={})
    assert config.trusted_proxies == ("10.0.0.5", "10.1.0.0/16")
    from_env = parse_config([], environ={"CHATUI_TRUSTED_PROXIES": "::1,127.0.0.1"})
    assert from_env.trusted_proxies == ("::1", "127.0.0.1")
    with pytest.raises(ConfigError, match="--trusted-proxies"):
        parse_config(["--trusted-proxies", "my-proxy"], environ={})


def test_the_middleware_believes_only_a_trusted_proxys_header() -> None:
    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"client": request.client.host if request.client else None})

    app = Starlette(routes=[Route("/", whoami)])
    app.add_middleware(ClientAddresses, proxies=TrustedProxies(["127.0.0.0/8"]))
    # starlette's TestClient connects as "testclient", which is no IP address: not trusted
    with TestClient(app) as http:
        assert http.get("/", headers={"X-Forwarded-For": "203.0.113.9"}).json() == {
            "client": "testclient"}
    with TestClient(app, client=("127.0.0.1", 5000)) as http:
        assert http.get("/").json() == {"client": "127.0.0.1"}
        assert http.get("/", headers={"X-Forwarded-For": "1.1.1.1, 203.0.113.9"}).json() == {
            "client": "203.0.113.9"}
