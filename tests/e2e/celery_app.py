"""The project's Celery app as the end-to-end tests run it: a task held by a worker that was killed is handed to
another after 10 s (Redis visibility timeout) instead of an hour."""

from cpo.celery import app

app.conf.broker_transport_options = {"visibility_timeout": 10}

__all__ = ["app"]
