"""The HTTP control API (FastAPI): the service layer's operations over HTTP, behind scoped tokens."""
