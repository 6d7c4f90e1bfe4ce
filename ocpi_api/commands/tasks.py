"""How an accepted command runs without holding the partner's request, and the Celery tasks that run it.

With workers (REDIS_URL): `command_execute_task` sends it and records the charger's answer, then
`command_result_deliver_task` POSTs the result, retried by Celery with backoff. When tasks run eagerly (the embedded
mode: one daphne, in-memory channel layer) the command runs as an asyncio task on the daphne process's event loop,
which is the loop that holds the chargers' sockets; a plain thread serves the shell and WSGI servers. Eager tasks
retry at once (Celery ignores the countdown of an eager retry).
"""

import logging
import threading

from celery import shared_task
from django.conf import settings
from django.db import connections

from ocpi_api.commands.results import (
    DELIVERY_ATTEMPTS,
    ResultNotDelivered,
    command_result_deliver,
    reservation_cancellation_record,
)
from ocpi_api.commands.send import command_execute, command_execute_async, in_thread
from ocpp_gateway.event_loop import server_loop

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name="ocpi_api.command_result_deliver",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=60,
    time_limit=90,
    autoretry_for=(ResultNotDelivered,),
    max_retries=DELIVERY_ATTEMPTS - 1,
    retry_backoff=2,
    retry_jitter=False,
)
def command_result_deliver_task(self, command_pk: int) -> bool:
    """POST a command's result to the partner; tried DELIVERY_ATTEMPTS times, 2 s then 4 s apart."""
    return command_result_deliver(command_pk=command_pk, last_attempt=self.request.retries >= self.max_retries)


@shared_task(name="ocpi_api.command_execute", acks_late=True, ignore_result=True, soft_time_limit=600, time_limit=660)
def command_execute_task(command_pk: int) -> None:
    command_execute(command_pk=command_pk)
    command_result_deliver_task.delay(command_pk)


@shared_task(name="ocpi_api.reservation_cancellation_tell", acks_late=True, ignore_result=True, time_limit=60)
def reservation_cancellation_tell_task(reservation_pk: int) -> None:
    """A reservation ended CANCELLED: tell the partner whose it is, unless it cancelled it itself."""
    command_pk = reservation_cancellation_record(reservation_pk=reservation_pk)
    if command_pk is not None:
        command_result_deliver_task.delay(command_pk)


_background: set = set()


async def command_run_async(*, command_pk: int) -> None:
    try:
        await command_execute_async(command_pk=command_pk)
        await in_thread(command_result_deliver_task.delay, command_pk)
    except Exception:
        logger.exception("command %s failed", command_pk)


def command_dispatch(*, command_pk: int) -> None:
    """Run an accepted command without holding the partner's request (call after commit)."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        command_execute_task.delay(command_pk)
        return
    loop = server_loop()
    if loop is not None:

        def spawn():
            task = loop.create_task(command_run_async(command_pk=command_pk))
            _background.add(task)
            task.add_done_callback(_background.discard)

        loop.call_soon_threadsafe(spawn)
        return

    def run():
        try:
            command_execute(command_pk=command_pk)
            command_result_deliver_task.delay(command_pk)
        except Exception:
            logger.exception("command %s failed", command_pk)
        finally:
            connections.close_all()

    threading.Thread(target=run, name=f"ocpi-command-{command_pk}", daemon=True).start()
