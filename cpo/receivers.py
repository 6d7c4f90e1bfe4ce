"""The assets app's receivers, connected in CpoConfig.ready: a new alert is sent by a task per channel."""

from cpo import tasks
from cpo.alerts import alert_channels, alert_raised
from cpo.task_dispatch import task_dispatch


def on_alert_raised(sender, *, alert_pk: int, kind: str, **kwargs) -> None:
    for channel in alert_channels(kind=kind):
        task_dispatch(tasks.alert_notify_task, alert_pk, channel)


def connect() -> None:
    alert_raised.connect(on_alert_raised, dispatch_uid="cpo.alert_raised")
