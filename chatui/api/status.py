"""REST endpoints on the server itself: the model server's health, the cache's statistics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.routing import APIRoute

from chatui.api.deps import Service
from chatui.api.schemas import BackendHealthRecord, CacheRecord, StatsRecord, StatusRecord


def status_router(route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(route_class=route_class)

    @router.get("/status", summary="Model server health", response_model=StatusRecord)
    def status(service: Service) -> StatusRecord:
        """Whether the model server answers; for the embedded model, its crashes and restarts."""
        health = service.backend_health()
        return StatusRecord(backend=BackendHealthRecord.of(health) if health else None)

    @router.get("/stats", summary="Cache statistics", response_model=StatsRecord)
    def stats(service: Service) -> StatsRecord:
        """Hits and misses of the conversation cache in front of the store."""
        stats = service.store.stats()  # None when no cache is in front of the store
        cache = CacheRecord.of(stats) if stats is not None else None
        return StatsRecord(cache=cache)

    return router
