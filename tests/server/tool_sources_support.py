"""Real parts for the tool-source tests: the test host app and the tool-calling model as
processes, and the sources file that points Parley at the host."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx

from tests.server.harness import _Process, _wait_http, base_env, free_port

HOST_SECRET = "host-secret-for-parley-tool-source-tests-0123"
HOST_API_KEY = "api-key-from-the-environment"


class HostApp:
    """``python -m tests.server.host_app`` on a loopback port."""

    def __init__(
        self,
        tmp: Path,
        *,
        port: int | None = None,
        secret: str | None = HOST_SECRET,
        jwks_url: str | None = None,
        user_secret: str | None = None,
        start: bool = True,
    ) -> None:
        self.tmp = tmp
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.secret = secret
        self.jwks_url = jwks_url
        self.user_secret = user_secret
        self._process: _Process | None = None
        if start:
            self.start()

    def start(self) -> None:
        args = [sys.executable, "-m", "tests.server.host_app", "--port", str(self.port)]
        if self.user_secret:
            args += ["--user-secret", self.user_secret]
        elif self.jwks_url:
            args += ["--jwks-url", self.jwks_url]
        elif self.secret:
            args += ["--secret", self.secret]
        self._process = _Process(args, base_env(), self.tmp / f"host-{self.port}.log")
        _wait_http(f"{self.url}/openapi.json", self._process)

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process = None

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        found = httpx.get(f"{self.url}/_requests", timeout=5).json()
        return [entry for entry in found if path is None or entry["path"].startswith(path)]

    def executions(self) -> dict[str, int]:
        return dict(httpx.get(f"{self.url}/_executions", timeout=5).json())

    def control(self, **switches: Any) -> None:
        httpx.post(f"{self.url}/_control", json=switches, timeout=5).raise_for_status()


class ToolsModel:
    """The scripted dev model with the tool-source tests' script, on a loopback port."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "tests.server.tools_model", "--port", str(self.port)]
        self._process = _Process(args, base_env(), tmp / f"tools-model-{self.port}.log")
        _wait_http(f"{self.url}/v1/models", self._process)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def stop(self) -> None:
        self._process.stop()


def sources_file(tmp: Path, host_url: str, *, secret: bool = True, **extra: Any) -> str:
    """A sources file with one OpenAPI source named ``host``."""
    lines = [
        "[[source]]",
        'name = "host"',
        'kind = "openapi"',
        f'url = "{host_url}/openapi.json"',
        'headers = { "X-Api-Key" = "${HOST_API_KEY}" }',
    ]
    if secret:
        lines.append('secret = "${HOST_SECRET}"')
    for key, value in extra.items():
        lines.append(f"{key} = {value}")
    path = tmp / "sources.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def source_env(path: str, **extra: str) -> dict[str, str]:
    """The environment of a Parley server that loads ``path``."""
    return {
        "PARLEY_TOOL_SOURCES": path,
        "HOST_SECRET": HOST_SECRET,
        "HOST_API_KEY": HOST_API_KEY,
        "PARLEY_TOOL_RETRY_BASE_S": "0.05",
        **extra,
    }
