"""`GET /`: the moderators' review page, a static single-page app shipped in the package.

Plain HTML, CSS and ES modules (no build step, no CDN); it talks to the same API as any client,
so it needs no rights of its own and its assets are public.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
ASSETS_PATH = "/ui"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def review_page() -> FileResponse:
    return FileResponse(UI_DIR / "index.html", media_type="text/html")


def mount_assets(app: FastAPI) -> None:
    """Serve the page's scripts and styles under /ui."""
    app.mount(ASSETS_PATH, StaticFiles(directory=UI_DIR), name="ui")
