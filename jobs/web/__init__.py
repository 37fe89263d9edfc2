"""The web console and REST API served by ``sieve serve`` (FastAPI, server-rendered pages)."""
