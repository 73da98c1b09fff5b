"""The FastAPI application factory: `create_app(settings)` builds the API (prefix /api/v1) and, with
`serve_ui`, the static dashboard in frontend/. Nothing happens at import time."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from app.api import API_PREFIX
from app.api.access import authorize
from app.api.body_limits import BodyLimits
from app.api.content_policy import content_security_policy, injected_style_hashes
from app.api.docs import install_api_docs
from app.api.errors import install_error_handlers
from app.api.guards import AnonymousWriteGuard, CrossSiteGuard, HostGuard, SecurityHeaders, allowed_host_names
from app.api.observability import ApiMetrics, RequestObserver
from app.api.openapi import install_openapi
from app.api.token_responses import MAX_BYTES as TOKEN_RESPONSES_MAX_BYTES
from app.api.routes import (
    checkpoint_downloads, checkpoint_store, checkpoints, compare, corpora, difficulty, exports, jobs, probes, runs, series, series_analytics, studies, system,
    training, vocabulary,
)
from app.core.config import Settings
from app.services.checkpoint_store import sweep_abandoned
from app.services.series_cache import ResultCache
from app.db.engine import make_engine, make_sessionmaker

# Token arrays are large JSON: a 4,580-token document's tokens are 1.0 MB, its trajectory over 20
# steps 1.5 MB; gzip sends 0.41 and 0.56 MB. Level 4 is within 3-10 % of level 6's size at a third of
# its CPU time (25-30 ms against 90-120 ms here); below 1 KB compression saves less than it costs.
# Clients that send no Accept-Encoding get plain JSON.
GZIP_MINIMUM_BYTES = 1024
GZIP_LEVEL = 4


def plotly_js_path(frontend_dir: Path) -> Path:
    """plotly.js's strict bundle, vendored in frontend/vendor (its README says why and from where): no
    CDN, no npm, and no run-time code generation, so the policy needs no 'unsafe-eval'."""
    return frontend_dir / "vendor" / "plotly-strict.min.js"


def create_app(settings: Settings | None = None, *, serve_ui: bool = True) -> FastAPI:
    settings = settings or Settings()
    engine = make_engine(settings.db_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        sweep_abandoned(settings.data_dir)
        yield
        engine.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="focalscope",
        version="0.1.0",
        description="Token-difficulty analytics: per-token loss, probability and focal weights of causal LMs.",
        # /docs is served from installed files (app.api.docs); ReDoc would come from a CDN.
        docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_sessionmaker(engine)
    # Series statistics stream every document of up to a thousand checkpoints: answers are kept.
    app.state.series_results = ResultCache()
    # Documents' tokens, encoded and gzipped (app/api/token_responses.py).
    app.state.token_responses = ResultCache(max_bytes=TOKEN_RESPONSES_MAX_BYTES)
    install_error_handlers(app)
    install_openapi(app)
    app.state.metrics = ApiMetrics(app.state.sessions)
    _add_middleware(app, settings)
    for module in (corpora, checkpoints, checkpoint_downloads, checkpoint_store, series, runs, exports, jobs, training, studies, system, vocabulary,
                   series_analytics, compare, difficulty):
        # Every API route passes `authorize`, which reads the route's scope from app.api.access.
        app.include_router(module.router, prefix=API_PREFIX, dependencies=[Depends(authorize)])
    # Probes and metrics stay open to whoever may reach the host (a load balancer, Prometheus): they say
    # whether the service is up and how busy, never what it holds.
    app.include_router(probes.router)

    install_api_docs(app, settings.frontend_dir)
    if serve_ui:
        _mount_frontend(app, settings.frontend_dir)
    return app


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """Outermost last: security headers go on every answer, the guards' refusals included."""
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_BYTES, compresslevel=GZIP_LEVEL)
    app.add_middleware(RequestObserver, metrics=app.state.metrics)
    app.add_middleware(BodyLimits, settings=settings, prefix=API_PREFIX)
    if settings.allowed_origins:  # CORS stays off unless other origins are named
        app.add_middleware(CORSMiddleware, allow_origins=settings.allowed_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    if not settings.open_access:
        app.add_middleware(AnonymousWriteGuard)
    app.add_middleware(CrossSiteGuard, allowed_origins=settings.allowed_origins)
    app.add_middleware(HostGuard, allowed=allowed_host_names(settings.host, settings.allowed_hosts))
    policy = content_security_policy(injected_style_hashes(plotly_js_path(settings.frontend_dir)))
    app.add_middleware(SecurityHeaders, content_security_policy=policy)


def _mount_frontend(app: FastAPI, frontend_dir: Path) -> None:
    plotly_js = plotly_js_path(frontend_dir)

    # Cached for a day: 5 MB that every page load needs. (Not /vendor/plotly.min.js, the regular
    # bundle's address before: a browser's cached copy of that one would break under the policy.)
    @app.get("/vendor/plotly-strict.min.js", include_in_schema=False)
    def _plotly() -> FileResponse:
        return FileResponse(plotly_js, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get("/", include_in_schema=False)
    def _index() -> FileResponse:
        return FileResponse(frontend_dir / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=frontend_dir), name="static")
