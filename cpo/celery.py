"""The Celery app. Without REDIS_URL tasks run in-process (CELERY_TASK_ALWAYS_EAGER), see settings."""

import logging
import os

from celery import Celery
from kombu.transport import redis as kombu_redis

from cpo.envfile import env_file_load

env_file_load()  # `celery -A cpo worker` starts here: the development .env, as for manage.py and daphne
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cpo.settings")

logger = logging.getLogger(__name__)
# What restoring a closed channel's tasks raises when Redis or the connection is gone (see RedisQoS).
RESTORE_ERRORS: tuple[type[BaseException], ...] = (
    AttributeError,
    *kombu_redis.get_redis_error_classes().connection_errors,
)


class RedisQoS(kombu_redis.QoS):
    """kombu's Redis QoS, except that a channel closed after its connection went away leaves its unacknowledged
    tasks where they are instead of failing.

    When Redis goes down, Celery collects the worker's broker connection: kombu closes its channels one by one and
    stops at the first that raises a connection error, then detaches the transport (`client = None`). A channel
    left open (typically the one holding the worker's acks_late tasks) is closed later during the consumer's restart;
    its QoS tries to push its tasks back to the queue and, with no client left, raises AttributeError ("'NoneType'
    object has no attribute 'hostname'", in `restore_unacked`). That is not a connection error, so the worker
    stopped with "Unrecoverable error" and its beat with it (issue 11). The tasks are safe where they are: kombu
    keeps every unacknowledged task in Redis (`unacked`), and any worker hands it out again once it is older than
    the visibility timeout (CELERY_VISIBILITY_TIMEOUT). Reproduced in tests/cpo/test_celery_broker.py."""

    def restore_unacked(self, client=None):
        try:
            return super().restore_unacked(client)
        except RESTORE_ERRORS as exc:
            delivered: dict = self._delivered or {}
            logger.warning(
                "broker connection gone: %d unacknowledged task(s) stay in Redis until the visibility timeout (%r)",
                len(delivered),
                exc,
            )
            delivered.clear()
            return None


class RedisChannel(kombu_redis.Channel):
    QoS = RedisQoS


class RedisTransport(kombu_redis.Transport):
    """The Redis transport of the project's Celery app (CELERY_BROKER_TRANSPORT): kombu's, with `RedisQoS`."""

    Channel = RedisChannel


app = Celery("cpo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
