"""The FastAPI app: `uvicorn app.main:app`, or `fakewatch serve` which also starts a worker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from app.errors import install_error_handlers
from app.metrics import Metrics, MetricsMiddleware
from app.routes import detect, faces, health, jobs, metrics, models, page
from app.services import Services
from app.sweeper import run_sweeper
from fakewatch import __version__
from fakewatch.settings import Settings

DESCRIPTION = """Deepfake detection for videos and images.

Submit a file to `POST /detect`, then poll `GET /jobs/{id}` (or pass a `callback_url`) for the
result: per-video, per-person and per-frame probabilities that a face was manipulated."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway for `settings` (default: from the environment).

    Stores and connections open when the app starts (its lifespan), not on import.
    """
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.start(settings)
        app.state.services = services
        app.state.metrics = Metrics(services.store, services.queue)
        stop = asyncio.Event()
        sweeper = asyncio.create_task(run_sweeper(services, stop))
        try:
            yield
        finally:
            stop.set()
            await sweeper
            services.close()

    app = FastAPI(
        title="fakewatch", version=__version__, description=DESCRIPTION, lifespan=lifespan
    )
    install_error_handlers(app)
    for router in (detect.router, jobs.router, models.router, health.router, metrics.router):
        app.include_router(router)
    app.include_router(faces.router)
    app.include_router(page.router)
    page.mount_assets(app)
    app.add_middleware(MetricsMiddleware)
    return app


app = create_app()
