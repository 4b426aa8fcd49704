"""All tool sources of a worker: built from ``PARLEY_TOOL_SOURCES``, started, registered, closed.

The app's lifespan calls `open_tool_sources` once; after that the registry offers each source's
tools like any pack's, and ``/readyz`` asks `ToolSources.degraded` which sources are down.
Each kind lives in its own module, imported only when a source of that kind is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging

from server.config import Settings
from server.tools.registry import ToolRegistry
from server.tools.sources.base import SourceLimits, ToolSource
from server.tools.sources.config import SourceConfig, load_sources_file
from server.tools.sources.errors import SourceConfigError
from server.tools.sources.user_token import (
    TOKEN_TTL_MAX_S,
    CallAuth,
    SigningKey,
    load_signing_key,
)

__all__ = ["SOURCE_CLASSES", "ToolSources", "open_tool_sources"]

logger = logging.getLogger(__name__)

# kind -> "module:class" of its `ToolSource`; the class is built as cls(config, limits, auth).
SOURCE_CLASSES = {
    "openapi": "server.tools.sources.openapi:OpenApiSource",
    "mcp": "server.tools.sources.mcp:McpSource",
}


class ToolSources:
    """The worker's tool sources, in the order of the file."""

    def __init__(self, sources: list[ToolSource]) -> None:
        self.sources = sources

    @classmethod
    def from_settings(cls, settings: Settings) -> ToolSources:
        """Read the sources file and build (not yet start) each source.

        Raises:
            SourceConfigError: the file or a source is wrong, or a source's signing key is
                missing; the message names the file, the source and the key.
        """
        path = settings.tool_sources
        if not path:
            return cls([])
        if not 0 < settings.tool_token_ttl_s <= TOKEN_TTL_MAX_S:
            raise SourceConfigError(
                path,
                None,
                None,
                f"PARLEY_TOOL_TOKEN_TTL_S must be above 0 and at most "
                f"{TOKEN_TTL_MAX_S:g} seconds, got {settings.tool_token_ttl_s:g}",
            )
        configs = load_sources_file(path)
        signing_key = load_signing_key(settings) if _needs_parley_key(configs) else None
        return cls([_build(settings, path, config, signing_key) for config in configs])

    async def start(self) -> None:
        """Start every source at once; one that does not answer starts degraded.

        Raises:
            SourceLoadError: a source answered with an unusable description.
        """
        results = await asyncio.gather(
            *(source.start() for source in self.sources), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                await self.close()
                raise result

    async def close(self) -> None:
        for source in self.sources:
            with contextlib.suppress(Exception):
                await source.close()

    def register(self, registry: ToolRegistry) -> None:
        """Offer every source's tools through ``registry``."""
        for source in self.sources:
            registry.add_provider(source)

    def degraded(self) -> dict[str, str]:
        """Sources not fully usable now, by name, with the reason."""
        return {source.name: source.problem for source in self.sources if source.problem}


def _needs_parley_key(configs: tuple[SourceConfig, ...]) -> bool:
    return any(config.auth == "user-jwt" and config.secret is None for config in configs)


def _build(
    settings: Settings, path: str, config: SourceConfig, signing_key: SigningKey | None
) -> ToolSource:
    try:
        auth = CallAuth(
            config,
            issuer=settings.tool_token_issuer,
            ttl_s=settings.tool_token_ttl_s,
            signing_key=signing_key,
        )
    except ValueError as exc:
        raise SourceConfigError(path, config.name, "secret", str(exc)) from exc
    module_name, _, class_name = SOURCE_CLASSES[config.kind].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SourceConfigError(
            path, config.name, "kind", f"{config.kind!r} sources are not available ({exc})"
        ) from exc
    source_class: type[ToolSource] = getattr(module, class_name)
    return source_class(config, SourceLimits.of(settings, config), auth)


async def open_tool_sources(
    settings: Settings, registry: ToolRegistry, stack: contextlib.AsyncExitStack
) -> ToolSources:
    """Build, start and register the configured sources; they are closed with ``stack``.

    Raises:
        SourceConfigError: the sources file is wrong.
        SourceLoadError: a source answered with an unusable description.
    """
    sources = ToolSources.from_settings(settings)
    await sources.start()
    stack.push_async_callback(sources.close)
    sources.register(registry)
    return sources
