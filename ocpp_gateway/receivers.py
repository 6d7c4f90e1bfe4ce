"""The gateway's own receivers of its domain events (connected in OcppGatewayConfig.ready): load management, and
reading a station's configuration on its first accepted boot.

Only stations under a load group cause work; the set is read at most every 30 s per process, so unmanaged chargers
cost a set lookup (transactions: one indexed read of the station, on the thread that announced the event)."""

from cpo.task_dispatch import task_dispatch
from ocpp_gateway import events, tasks
from ocpp_gateway.models import Transaction
from ocpp_gateway.selectors import load_managed_station_pks
from ocpp_gateway.services.device_model import station_configuration_wanted


def on_transaction_started_or_ended(sender, *, transaction_pk: int, **kwargs) -> None:
    managed = load_managed_station_pks()
    if not managed:
        return
    if Transaction.objects.filter(pk=transaction_pk, station_id__in=managed).exists():
        task_dispatch(tasks.load_rebalance_for_transaction_task, transaction_pk)


def on_station_booted(sender, *, station_pk: int, **kwargs) -> None:
    if station_pk in load_managed_station_pks():
        task_dispatch(tasks.load_station_default_profile_task, station_pk)


def on_station_booted_configuration(sender, *, station_pk: int, **kwargs) -> None:
    """After the BootNotification answer (the event is announced on commit, the read runs as a task)."""
    if station_configuration_wanted(station_pk=station_pk):
        task_dispatch(tasks.station_configuration_read_task, station_pk)


def connect() -> None:
    events.transaction_started.connect(on_transaction_started_or_ended, dispatch_uid="gateway.load.started")
    events.transaction_ended.connect(on_transaction_started_or_ended, dispatch_uid="gateway.load.ended")
    events.station_booted.connect(on_station_booted, dispatch_uid="gateway.load.booted")
    events.station_booted.connect(on_station_booted_configuration, dispatch_uid="gateway.configuration.booted")
