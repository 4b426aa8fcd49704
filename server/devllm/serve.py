"""Running the dev model as its own process (``parley devllm``), for benchmarks and fault tests."""

from __future__ import annotations

from typing import Any

import uvicorn

from server.devllm.app import create_devllm_app


def run(host: str = "127.0.0.1", port: int = 8100, **options: Any) -> None:
    """Serve the dev model with uvicorn until interrupted.

    ``options`` go to ``create_devllm_app`` (``script``, ``token_rate``, ``first_token_delay_s``,
    ``request_log_size``). It listens on loopback by default because its control endpoints
    (``/_dev/...``) have no authentication.
    """
    app = create_devllm_app(**options)
    uvicorn.run(app, host=host, port=port, log_level="info")
