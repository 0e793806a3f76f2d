"""``GET /console``: the operator's console, a static page and its assets that call the
JSON API from the browser with the service token (docs/console.md).

The files ship as package data (``scorer/api/console_assets/``) and are read once, at install:
they are immutable for the life of the process, so their bytes, ETags and gzipped
copies are kept (about 60 kB in all). The page holds no data and no secret; it is
public (``auth.PUBLIC_ROUTES``) and every data call it makes carries the bearer token.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from importlib import resources

import bottle

from scorer.api.compress import MIN_BYTES, accepts_gzip
from scorer.api.http import etag_matches, etag_of, header

# The route of each shipped file: literal rules (auth.PUBLIC_ROUTES and the Booting app
# compare them with PATH_INFO).
FILES = {
    "/console": ("index.html", "text/html; charset=utf-8"),
    "/console/console.js": ("console.js", "text/javascript; charset=utf-8"),
    "/console/console.css": ("console.css", "text/css; charset=utf-8"),
    "/console/icon.svg": ("icon.svg", "image/svg+xml"),
}
PATHS = frozenset(FILES)
MEDIA_TYPES = {path: media.split(";")[0] for path, (_, media) in FILES.items()}

# Only the app's own origin: no inline script or style, no CDN, no framing. The page
# draws its charts as SVG elements (no data: images are needed).
POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Revalidate every time: a 304 costs a few hundred bytes, and a deploy is seen at once.
    "Cache-Control": "no-cache",
    "Vary": "Accept-Encoding",
}


@dataclass(frozen=True)
class Asset:
    """One shipped file as it is served: its bytes, gzipped bytes and both ETags."""

    media_type: str
    data: bytes
    packed: bytes | None  # None when gzip would save nothing
    etag: str

    @classmethod
    def read(cls, name: str, media_type: str) -> Asset:
        data = resources.files("scorer.api").joinpath("console_assets", name).read_bytes()
        packed = gzip.compress(data, compresslevel=9, mtime=0) if len(data) >= MIN_BYTES else None
        return cls(media_type, data, packed, etag_of(data.decode()))

    def send(self) -> bytes:
        """The asset for this request: 304 when If-None-Match matches, gzipped when the
        client takes it (the ETag then weak, as the compress plugin does for JSON)."""
        response = bottle.response
        for name, value in HEADERS.items():
            response.set_header(name, value)
        gzipped = self.packed is not None and accepts_gzip(header("Accept-Encoding")[:256])
        etag = f"W/{self.etag}" if gzipped else self.etag
        response.set_header("ETag", etag)
        if etag_matches(header("If-None-Match"), self.etag):
            response.status = 304
            return b""
        response.content_type = self.media_type
        if gzipped and self.packed is not None:
            response.set_header("Content-Encoding", "gzip")
            return self.packed
        return self.data


def assets() -> dict[str, Asset]:
    """Every shipped file by its route, read now."""
    return {path: Asset.read(name, media) for path, (name, media) in FILES.items()}


def install(app: bottle.Bottle, files: dict[str, Asset] | None = None) -> None:
    """Serve the console's files on ``app`` (``files``: already read, e.g. shared with
    the Booting app; default: read them now)."""
    files = assets() if files is None else files
    for path, asset in files.items():
        app.route(path, "GET", asset.send, name=f"console:{path}")


def app() -> bottle.Bottle:
    """A Bottle app serving only the console: what the Booting app hands console paths
    to before the settings are known (the API then answers 503 or 401, which the page
    shows)."""
    from scorer.api.http import install_errors
    from scorer.api.params import Parameters
    from scorer.storage.outage import OutageWatch

    console = bottle.Bottle()
    install(console)
    install_errors(console, OutageWatch(), no_database=PATHS)
    console.install(Parameters())
    return console
