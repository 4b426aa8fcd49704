"""The REST API under ``/api/v1``: history, feedback, escalation, confirmations, audit, usage
and status, authenticated with the same JWT as the socket. ``routes.api_mount()`` is the entry
point; ``api`` holds the machinery, one module per resource holds its operations."""
