import httpx
from celery import shared_task

from cpo.alerts import alert_notify, alerts_station_offline_check


@shared_task(acks_late=True, time_limit=60, autoretry_for=(httpx.HTTPError, OSError), retry_backoff=30, max_retries=5)
def alert_notify_task(alert_pk: int, channel: str) -> None:
    """A new alert, sent by e-mail or to the webhook; a mail server or webhook that fails is tried again later."""
    alert_notify(alert_pk=alert_pk, channel=channel)


@shared_task(time_limit=300)
def alerts_station_offline_check_task() -> tuple[int, int]:
    """Periodic: stations offline past ALERT_STATION_OFFLINE_MINUTES raise an alert; those back online resolve it."""
    return alerts_station_offline_check()
