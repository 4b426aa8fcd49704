"""The scripted dev model: an OpenAI-compatible chat completions server that follows a script.

It lets Parley run, and be tested and benchmarked, without a real model. Modules:

- ``app``: the ASGI app (``create_devllm_app``) and its control endpoints;
- ``script``: rules that turn the conversation into a reply; ``default_script``: the ERP demo;
- ``answers``: plain-language answers built from tool results;
- ``faults``: injected failures (429, 500, slow first token, dropped stream, ...);
- ``transport``: an httpx transport that streams from the app in-process;
- ``serve``: running it as its own process under uvicorn.
"""
