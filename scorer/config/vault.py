"""The Infisical vault: log in with universal auth, read the folder ``/rack/``.

Plain HTTP through ``requests`` with timeouts: the official SDK imports boto3, a poor
trade on a 512 MB dyno. Two calls, both documented by Infisical:

- ``POST {api}/api/v1/auth/universal-auth/login`` with ``clientId``/``clientSecret``
  answers an ``accessToken``;
- ``GET {api}/api/v4/secrets?projectId=…&environment=…&secretPath=/rack`` lists the
  folder's secrets (``secretKey``/``secretValue``). v4 is the current endpoint; v3's
  ``/api/v3/secrets/raw`` is listed among the deprecated ones (docs/runbook.md).

Every request carries the Cloudflare Access service-token headers when they are set
(the vault sits behind Cloudflare Access). Errors name what failed, never a value:
no secret, no access token, no response body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

LOGIN_PATH = "/api/v1/auth/universal-auth/login"
SECRETS_PATH = "/api/v4/secrets"
FOLDER = "/rack/"
TIMEOUT = (5.0, 10.0)  # connect, read: a boot must not hang on the vault


class VaultError(RuntimeError):
    """The vault could not be read. ``reason`` is short and safe for health and logs."""

    def __init__(self, reason: str, *, reachable: bool, authenticated: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reachable = reachable
        self.authenticated = authenticated


@dataclass(frozen=True)
class VaultConfig:
    """Where the vault is and how to log in; secrets are kept out of ``repr``."""

    api_url: str
    project_id: str
    client_id: str
    client_secret: str
    environment: str
    folder: str = FOLDER
    cf_access_client_id: str | None = None
    cf_access_client_secret: str | None = None

    def __repr__(self) -> str:
        return (
            f"VaultConfig(api_url={self.api_url!r}, project_id={self.project_id!r}, "
            f"environment={self.environment!r}, folder={self.folder!r})"
        )

    def headers(self) -> dict[str, str]:
        """The Cloudflare Access headers, sent on every request when configured."""
        if self.cf_access_client_id and self.cf_access_client_secret:
            return {
                "CF-Access-Client-Id": self.cf_access_client_id,
                "CF-Access-Client-Secret": self.cf_access_client_secret,
            }
        return {}


def read_folder(config: VaultConfig, session: requests.Session | None = None) -> dict[str, str]:
    """Log in and return the folder's secrets as ``{key: value}``; raise VaultError."""
    own = session is None
    http = session or requests.Session()
    try:
        token = _login(http, config)
        return _list(http, config, token)
    finally:
        if own:
            http.close()


def _url(config: VaultConfig, path: str) -> str:
    return config.api_url.rstrip("/") + path


def _call(http: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
    try:
        return http.request(method, url, timeout=TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        # The exception's text can carry the URL (no secret in it), but keep it short.
        raise VaultError(
            f"vault unreachable: {type(exc).__name__}", reachable=False, authenticated=False
        ) from None


def _login(http: requests.Session, config: VaultConfig) -> str:
    response = _call(
        http,
        "POST",
        _url(config, LOGIN_PATH),
        json={"clientId": config.client_id, "clientSecret": config.client_secret},
        headers=config.headers(),
    )
    if response.status_code in (400, 401, 403, 404):
        # 403 is also what Cloudflare Access answers without valid service-token headers.
        raise VaultError(
            f"vault login refused (HTTP {response.status_code})",
            reachable=True,
            authenticated=False,
        )
    if response.status_code != 200:
        raise VaultError(
            f"vault unreachable: login answered HTTP {response.status_code}",
            reachable=False,
            authenticated=False,
        )
    token = _json(response).get("accessToken")
    if not isinstance(token, str) or not token:
        raise VaultError(
            "vault login answered no access token", reachable=True, authenticated=False
        )
    return token


def _list(http: requests.Session, config: VaultConfig, token: str) -> dict[str, str]:
    response = _call(
        http,
        "GET",
        _url(config, SECRETS_PATH),
        params={
            "projectId": config.project_id,
            "environment": config.environment,
            # Infisical's folder paths have no trailing slash ("/rack"); "/" is the root.
            "secretPath": config.folder.rstrip("/") or "/",
            "viewSecretValue": "true",
            "expandSecretReferences": "true",
            "includeImports": "true",
        },
        headers={**config.headers(), "Authorization": f"Bearer {token}"},
    )
    if response.status_code in (401, 403, 404):
        raise VaultError(
            f"vault read refused (HTTP {response.status_code}) for environment "
            f"{config.environment!r}, folder {config.folder}",
            reachable=True,
            authenticated=True,
        )
    if response.status_code != 200:
        raise VaultError(
            f"vault unreachable: secrets list answered HTTP {response.status_code}",
            reachable=False,
            authenticated=True,
        )
    return _secrets(_json(response))


def _secrets(body: Mapping[str, Any]) -> dict[str, str]:
    """``{key: value}`` from the list body: imported folders first, the folder's own win."""
    found: dict[str, str] = {}
    for imported in body.get("imports") or []:
        found.update(_pairs(imported.get("secrets") or []))
    found.update(_pairs(body.get("secrets") or []))
    return found


def _pairs(items: list[Any]) -> dict[str, str]:
    return {
        item["secretKey"]: item["secretValue"]
        for item in items
        if isinstance(item, dict)
        and isinstance(item.get("secretKey"), str)
        and isinstance(item.get("secretValue"), str)
    }


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise VaultError(
            "vault answered something that is not a JSON object",
            reachable=True,
            authenticated=False,
        )
    return body
