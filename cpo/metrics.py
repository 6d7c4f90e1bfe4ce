"""`/metrics`: Prometheus metrics of this process (prometheus_client's registry), for Prometheus to scrape on each
process's own address (docs/deployment.md, "Metrics").

What is registered: the gateway's per-process metrics (ocpp_gateway/metrics.py), the outbox gauges
(ocpi_api/metrics.py) and the Celery queue depth (here), plus prometheus_client's process metrics (open files,
memory, CPU). The platform-wide gauges are computed at scrape time where METRICS_PLATFORM_GAUGES is on.

Access: only peers in METRICS_ALLOWED_NETWORKS (loopback by default; the client address after TRUSTED_PROXIES) or a
request bearing METRICS_TOKEN; anyone else gets 404, as if there were nothing here. deploy/haproxy.cfg refuses
/metrics from the internet in any case."""

import hmac
import ipaddress

import redis
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

QUEUE_DEPTH = ("celery_queue_length", "Tasks waiting in the Celery queue (Redis list length, all priorities)")
# kombu's Redis transport keeps priorities 3, 6 and 9 in lists of their own beside the queue's.
KOMBU_PRIORITY_SUFFIXES = ["", "\x06\x163", "\x06\x166", "\x06\x169"]
REDIS_TIMEOUT_SECONDS = 1.0


class CeleryQueueCollector(Collector):
    """LLEN of the queue's lists in one pipeline when scraped (REDIS_URL set, METRICS_PLATFORM_GAUGES on)."""

    _client: redis.Redis | None = None

    def describe(self):
        return [GaugeMetricFamily(*QUEUE_DEPTH, labels=["queue"])]

    def collect(self):
        if not (settings.METRICS_PLATFORM_GAUGES and settings.REDIS_URL):
            return
        if self._client is None:
            self._client = redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
            )
        queue = settings.CELERY_TASK_DEFAULT_QUEUE
        with self._client.pipeline(transaction=False) as pipe:
            for suffix in KOMBU_PRIORITY_SUFFIXES:
                pipe.llen(queue + suffix)
            lengths = pipe.execute()
        family = GaugeMetricFamily(*QUEUE_DEPTH, labels=["queue"])
        family.add_metric([queue], sum(lengths))
        yield family


def metrics_access_allowed(request: HttpRequest) -> bool:
    if settings.METRICS_TOKEN:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode()):
            return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR") or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network, strict=False) for network in settings.METRICS_ALLOWED_NETWORKS)


def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_access_allowed(request):
        raise Http404
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
