"""The browser's side: the WebSocket endpoint, one connection's send queue, the Origin check
and uvicorn's protocol with the slow-consumer drop."""
