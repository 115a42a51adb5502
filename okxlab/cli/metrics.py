"""okxlab metrics — serve okxlab's own Prometheus metrics (runs, stage latency, equity, states, reconciliation)."""

from __future__ import annotations

import time

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9464, show_default=True, type=click.IntRange(1, 65535))
def metrics(host: str, port: int) -> None:
    """Serve /metrics for Prometheus until interrupted (values read from the database at each scrape)."""
    from prometheus_client import CollectorRegistry, start_http_server

    from okxlab.cli.common import open_db
    from okxlab.errors import UserError
    from okxlab.review.exporter import OkxlabCollector

    registry = CollectorRegistry()
    registry.register(OkxlabCollector(open_db()))
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (choose another --port)") from None
    click.echo(f"okxlab metrics on http://{host}:{port}/metrics", err=True)
    while True:
        time.sleep(3600)
