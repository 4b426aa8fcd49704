"""Knowledge with sources: documents of the host app, searched by the assistant and cited."""
