"""The project's Celery app as the end-to-end tests run it: a task held by a worker that was killed is handed to
another after 10 s (Redis visibility timeout) instead of an hour, the workers looking for such tasks every second
(kombu's default is every 10 s, scanning on every 10th look only)."""

from cpo.celery import app

app.conf.broker_transport_options = {
    **app.conf.broker_transport_options,  # the project's socket timeouts and health checks
    "visibility_timeout": 10,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}

__all__ = ["app"]
