"""One assistant turn from a user message to ``turn_end``: the engine, the model adapter, the
context window, delta batching and the tool runner with its confirmations."""
