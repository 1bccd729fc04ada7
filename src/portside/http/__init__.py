"""ASGI only: parse → authorize → call one service → render. Never imports `storage` or `meta`."""
