"""A local stand-in for the Infisical API, on 127.0.0.1: the subset the service uses.

- ``POST /api/v1/auth/universal-auth/login`` checks clientId/clientSecret and answers
  an access token (401 otherwise, as Infisical does);
- ``GET /api/v4/secrets`` checks the bearer token, projectId, environment and
  secretPath and answers the folder's secrets;
- every request must carry the Cloudflare Access headers when the server expects them
  (403 otherwise, as Cloudflare Access does); calls are counted per path;
- ``down = True`` answers 503 to everything (the vault or Cloudflare being down).

Also a script for manual runs (the honcho check in docs/runbook.md):
``python -m tests.helpers.fake_vault --port 8200 RACK_SERVICE_TOKEN=… FINBERT_MODEL_SHA=…``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CLIENT_ID = "client-id-0001"
CLIENT_SECRET = "client-secret-do-not-log-0001"
PROJECT_ID = "project-0001"
CF_ID = "cf-id-0001.access"
CF_SECRET = "cf-secret-do-not-log-0001"


@dataclass
class FakeVault:
    """The vault's state; the handler reads it, tests change it."""

    folders: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    project_id: str = PROJECT_ID
    cf_id: str | None = CF_ID
    cf_secret: str | None = CF_SECRET
    down: bool = False
    calls: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    tokens: set[str] = field(default_factory=set)
    url: str = ""

    def env(self, **extra: str) -> dict[str, str]:
        """The bootstrap variables that point the service at this vault."""
        return {
            "INFISICAL_API_URL": self.url,
            "INFISICAL_PROJECT_ID": self.project_id,
            "INFISICAL_CLIENT_ID": self.client_id,
            "INFISICAL_CLIENT_SECRET": self.client_secret,
            **({"CF_ACCESS_CLIENT_ID": self.cf_id} if self.cf_id else {}),
            **({"CF_ACCESS_CLIENT_SECRET": self.cf_secret} if self.cf_secret else {}),
            **extra,
        }


def _handler(vault: FakeVault) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _gate(self, path: str) -> bool:
            vault.calls[path] += 1
            if vault.down:
                self._answer(503, {"message": "unavailable"})
                return False
            if vault.cf_id and (
                self.headers.get("CF-Access-Client-Id") != vault.cf_id
                or self.headers.get("CF-Access-Client-Secret") != vault.cf_secret
            ):
                vault.refused["cloudflare"] += 1
                self._answer(403, {"message": "Forbidden (Cloudflare Access)"})
                return False
            return True

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            if not self._gate(path):
                return
            if path != "/api/v1/auth/universal-auth/login":
                return self._answer(404, {"message": "not found"})
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if (body.get("clientId"), body.get("clientSecret")) != (
                vault.client_id,
                vault.client_secret,
            ):
                vault.refused["login"] += 1
                return self._answer(401, {"message": "Invalid credentials"})
            token = secrets.token_urlsafe(24)
            vault.tokens.add(token)
            self._answer(200, {"accessToken": token, "expiresIn": 7200, "tokenType": "Bearer"})

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if not self._gate(parts.path):
                return
            if parts.path != "/api/v4/secrets":
                return self._answer(404, {"message": "not found"})
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in vault.tokens:
                vault.refused["token"] += 1
                return self._answer(401, {"message": "Invalid token"})
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if query.get("projectId") != vault.project_id:
                return self._answer(404, {"message": "project not found"})
            folder = vault.folders.get((query.get("environment", ""), query.get("secretPath", "")))
            if folder is None:
                return self._answer(404, {"message": "folder not found"})
            items = [{"secretKey": k, "secretValue": v} for k, v in folder.items()]
            self._answer(200, {"secrets": items, "imports": []})

    return Handler


@contextmanager
def serving(vault: FakeVault | None = None, port: int = 0) -> Iterator[FakeVault]:
    """Serve ``vault`` on 127.0.0.1 (a free port unless given) for the block."""
    vault = vault or FakeVault()
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(vault))
    vault.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield vault
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description="a local fake Infisical vault")
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument("--environment", default="prod")
    parser.add_argument("--down-for", type=float, default=0.0, help="answer 503 at first")
    parser.add_argument("secrets", nargs="*", help="KEY=VALUE for the folder /rack")
    args = parser.parse_args()
    folder = dict(item.split("=", 1) for item in args.secrets)
    vault = FakeVault(folders={(args.environment, "/rack"): folder}, down=args.down_for > 0)
    with serving(vault, args.port):
        print(f"fake vault on {vault.url}: {sorted(folder)} in {args.environment}:/rack/")
        print(" ".join(f"{k}={v}" for k, v in vault.env().items() if "SECRET" not in k))
        stop = threading.Event()
        if args.down_for > 0:
            stop.wait(args.down_for)
            vault.down = False
            print(f"fake vault is up after {args.down_for:.0f}s", flush=True)
        with suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
