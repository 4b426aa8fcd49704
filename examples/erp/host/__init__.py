"""The demo ERP as a host application of its own: a web app that Parley reaches over HTTP.

It keeps the books in its own database (``ERP_DATABASE_URL``), serves one REST operation per
tool of the ERP pack with an OpenAPI 3.1 document at ``/openapi.json``, accepts only calls made
as the user (a short-lived JWT signed by Parley), applies its own role checks, and runs every
action exactly once per ``Idempotency-Key``. Run it with ``python -m examples.erp``.

Modules: `settings` (the ``ERP_*`` environment), `auth` (verifying Parley's tokens),
`database` (engine and setup), `idempotency` (stored answers per key), `operations` (which
tool is which HTTP operation), `openapi` (the document), `api` (the request handlers), `demo`
(the demo page's live data) and `app` (assembling the Starlette app).
"""
