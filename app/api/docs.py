"""/docs: Swagger UI served from the installed `fastapi-offline` package's copy of its files, so that
it works offline and under the Content-Security-Policy (its start-up script is frontend/docs/
swagger_init.js, not inline)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse

ASSET_CACHE = {"Cache-Control": "max-age=86400"}


def swagger_ui_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def install_api_docs(app: FastAPI, frontend_dir: Path) -> None:
    swagger = swagger_ui_dir()
    files = {
        "swagger-ui-bundle.js": (swagger / "swagger-ui-bundle.js", "text/javascript"),
        "swagger-ui.css": (swagger / "swagger-ui.css", "text/css"),
        "swagger_init.js": (frontend_dir / "docs" / "swagger_init.js", "text/javascript"),
    }

    @app.get("/docs", include_in_schema=False)
    def _docs_page() -> FileResponse:
        return FileResponse(frontend_dir / "docs" / "index.html", headers={"Cache-Control": "no-cache"})

    for name, (path, media_type) in files.items():
        app.add_api_route(f"/docs/{name}", _file_route(path, media_type), include_in_schema=False)


def _file_route(path: Path, media_type: str):
    def serve() -> FileResponse:
        return FileResponse(path, media_type=media_type, headers=ASSET_CACHE)

    return serve
