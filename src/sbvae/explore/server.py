"""The HTTP side of ``sbvae explore``: the page's three files and a small JSON API.

Built on the standard library (``http.server.ThreadingHTTPServer`` and ``json``): the app
serves one user on their own machine, so a framework would add a dependency to keep up to date
and nothing the page needs.

Routes (every other path is a 404; no URL maps to a file on disk, so nothing outside the
app's own assets can be read):

* ``GET /``, ``/app.js``, ``/style.css``: the page, from the package's ``static`` folder.
* ``GET /api/info``: runs, latents (KL order, activity, the factor each carries), factor
  controls, the pairing of latents across runs, the latent-geometry lines.
* ``POST /api/start`` ``{"mode": "random"|"factors"|"prior", "seed": N, "values": {...}}``:
  a starting point (input, reconstructions, posterior means).
* ``POST /api/decode`` ``{"latents": [[z...] or null per run]}``: PNG data URLs.
* ``GET /api/decode.png?run=I&z=Z0,Z1,...``: one decoding as an ``image/png``.

A malformed request gets a 4xx JSON answer ``{"error": message}``; the server keeps serving.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import socket
import socketserver
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from sbvae.errors import UserError
from sbvae.explore.session import ExploreSession, RequestError, png_bytes

ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
"""URL path -> (file in the package's static folder, content type): the only files served."""
MAX_BODY = 64 * 1024
LISTEN_BACKLOG = 1024
"""Connections the kernel queues before the server accepts them (the standard library's 5 made
clients of a busy page retry their connection for seconds; Linux caps it at net.core.somaxconn)."""
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def _asset(name: str) -> bytes:
    return (resources.files("sbvae.explore") / "static" / name).read_bytes()


class ExploreHandler(BaseHTTPRequestHandler):
    """Answers one request against the server's :class:`ExploreSession`."""

    server: ExploreServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a connection may stay silent mid-request before it is dropped
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart (delayed ACK)

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):  # the client went away: nothing to answer
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:  # quiet unless asked
        if self.server.verbose:
            super().log_message(format, *args)

    # -------------------------------------------------------------- plumbing

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self.close_connection = True  # the body may be unread: start afresh on a new connection
        self._json(status, {"error": message})

    def _host_allowed(self) -> bool:
        """On a loopback address, only requests naming a loopback host (no DNS rebinding)."""
        if not self.server.loopback:
            return True
        host = self.headers.get("Host", "")
        name = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0]
        return name.lower() in LOOPBACK_NAMES

    def _body(self) -> Any:
        length_text = self.headers.get("Content-Length")
        if length_text is None or not (length_text.isascii() and length_text.isdigit()):
            raise _HttpError(HTTPStatus.LENGTH_REQUIRED, "a JSON body with a Content-Length is required")
        length = int(length_text)
        if length > MAX_BODY:
            raise _HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body may hold at most {MAX_BODY} bytes")
        raw = self.rfile.read(length)
        try:
            return json.loads(raw.decode())
        except RecursionError:
            raise _HttpError(HTTPStatus.BAD_REQUEST, "the body is not JSON the app reads (nested too deeply)") from None
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a number past Python's digit limit
            raise _HttpError(HTTPStatus.BAD_REQUEST, f"the body is not JSON ({exc})") from None

    def _handle(self, method: str) -> None:
        try:
            if not self._host_allowed():
                raise _HttpError(HTTPStatus.FORBIDDEN, "requests must name this machine (localhost)")
            path, query = self._split()
            routes = self.GET if method in ("GET", "HEAD") else self.POST
            if path in routes:
                routes[path](self, query)
            elif path in ASSETS or path in self.GET or path in self.POST:
                raise _HttpError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed on {path}")
            else:
                raise _HttpError(HTTPStatus.NOT_FOUND, "not found")
        except _HttpError as exc:
            self._error(exc.status, exc.message)
        except RequestError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bug: answer it, log it, keep serving
            print(f"sbvae explore: {type(exc).__name__}: {exc}", file=sys.stderr)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(exc).__name__}")

    def _split(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        try:
            query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False, max_num_fields=64)
        except ValueError as exc:
            raise _HttpError(HTTPStatus.BAD_REQUEST, f"bad query string ({exc})") from None
        return parts.path, query

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # -------------------------------------------------------------- routes

    def _asset_route(self, _query: dict[str, list[str]]) -> None:
        name, content_type = ASSETS[urlsplit(self.path).path]
        self._send(HTTPStatus.OK, _asset(name), content_type)

    def _info(self, _query: dict[str, list[str]]) -> None:
        self._json(HTTPStatus.OK, self.server.info)

    def _decode_png(self, query: dict[str, list[str]]) -> None:
        run_text, z_text = _one(query, "run"), _one(query, "z")
        try:
            run = int(run_text)
        except ValueError:
            raise RequestError(f"'run' must be an integer, not {run_text!r}") from None
        try:
            z = [float(v) for v in z_text.split(",")] if z_text else []
        except ValueError:
            raise RequestError("'z' must be comma-separated numbers") from None
        self._send(HTTPStatus.OK, png_bytes(self.server.session.decode(run, z)), "image/png")

    def _start(self, _query: dict[str, list[str]]) -> None:
        body = _object(self._body())
        result = self.server.session.start(body.get("mode"), body.get("seed", 0), body.get("values"))
        self._json(HTTPStatus.OK, result)

    def _decode(self, _query: dict[str, list[str]]) -> None:
        body = _object(self._body())
        self._json(HTTPStatus.OK, {"images": self.server.session.decode_all(body.get("latents"))})

    GET: ClassVar[dict[str, Route]] = {
        **dict.fromkeys(ASSETS, _asset_route),
        "/api/info": _info,
        "/api/decode.png": _decode_png,
    }
    POST: ClassVar[dict[str, Route]] = {"/api/start": _start, "/api/decode": _decode}


Route = Callable[[ExploreHandler, dict[str, list[str]]], None]


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object")
    return body


def _one(query: dict[str, list[str]], key: str) -> str:
    values = query.get(key)
    if not values or len(values) != 1:
        raise RequestError(f"give '{key}' once in the query string")
    return values[0]


class ExploreServer(ThreadingHTTPServer):
    """A threaded HTTP server holding one :class:`ExploreSession`."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = LISTEN_BACKLOG

    session: ExploreSession
    info: dict[str, Any]

    def __init__(self, host: str, port: int, verbose: bool = False) -> None:
        """Bind ``host``:``port`` (0: any free port); a one-line :class:`UserError` when that
        is not possible. Requests are answered once a session is attached and served."""
        self.verbose = verbose
        family, address = _resolve(host, port)
        self.address_family = family
        self.loopback = _is_loopback(address[0])
        try:
            super().__init__(address, ExploreHandler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"port {port} on {host} is already in use (choose another with --port)") from None
            if exc.errno == errno.EACCES:
                raise UserError(f"not allowed to listen on port {port} of {host} (below 1024 needs root)") from None
            raise UserError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None

    def attach(self, session: ExploreSession) -> None:
        """Answer requests from ``session``."""
        self.session = session
        self.info = session.describe()

    def server_bind(self) -> None:
        # TCPServer's bind, without HTTPServer's reverse DNS lookup of the host name
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        if self.loopback and self.address_family == socket.AF_INET:
            host = "127.0.0.1"
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _resolve(host: str, port: int) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    """The address family and socket address to bind for ``host``; a :class:`UserError` for a
    host name that does not resolve or a port out of range."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be in [0, 65535], not {port}")
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise UserError(f"cannot listen on host {host!r}: {reason}") from None
    family, _, _, _, address = found[0]
    return family, address


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def start_server(
    session: ExploreSession, host: str = "127.0.0.1", port: int = 0, verbose: bool = False
) -> tuple[ExploreServer, threading.Thread]:
    """Serve ``session`` from a background thread (port 0: any free port); stop it with
    ``server.shutdown(); server.server_close()``."""
    server = ExploreServer(host, port, verbose)
    server.attach(session)
    thread = threading.Thread(target=server.serve_forever, name="sbvae-explore", daemon=True)
    thread.start()
    return server, thread


def serve(server: ExploreServer) -> None:
    """Print the address, then serve until interrupted."""
    print(f"sbvae explore: open {server.url} in a browser (Ctrl-C stops)", flush=True)
    server.serve_forever()
