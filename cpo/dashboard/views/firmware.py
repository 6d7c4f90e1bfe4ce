"""Firmware: images (uploaded in the admin), campaigns with their progress, starting, pausing, resuming one and
retrying its failed stations; one station's update is started from its page (cpo.dashboard.views.stations)."""

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views import View

from cpo.dashboard.permissions import Role, RoleRequiredMixin
from cpo.dashboard.services import (
    firmware_campaign_pause_staff,
    firmware_campaign_resume_staff,
    firmware_campaign_retry_staff,
    firmware_campaign_start_staff,
)
from cpo.dashboard.views.base import DashboardView
from cpo.models import Location
from ocpp_gateway.models import FirmwareCampaign, FirmwareImage
from ocpp_gateway.services.firmware import firmware_campaign_progress, firmware_campaign_updates


class FirmwareView(DashboardView):
    template_name = "dashboard/firmware.html"
    nav = "firmware"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        campaigns = list(FirmwareCampaign.objects.select_related("image", "location")[:50])
        context.update(
            images=FirmwareImage.objects.all()[:50],
            locations=Location.objects.all(),
            campaigns=[(c, firmware_campaign_progress(campaign=c)) for c in campaigns],
        )
        return context


class FirmwareCampaignView(DashboardView):
    """One campaign: its progress and a row per station, failures first."""

    template_name = "dashboard/firmware_campaign.html"
    nav = "firmware"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        campaign = get_object_or_404(FirmwareCampaign.objects.select_related("image", "location"), pk=kwargs["pk"])
        context.update(
            campaign=campaign,
            progress=firmware_campaign_progress(campaign=campaign),
            updates=firmware_campaign_updates(campaign=campaign),
        )
        return context


def _guard(value: str, *, most: int) -> int | None:
    """An optional guard from the form: empty is off; otherwise 1..most (ValueError)."""
    value = value.strip()
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= most:
        raise ValueError(value)
    return int(value)


class FirmwareCampaignStartView(RoleRequiredMixin, View):
    """POST: update every station matching the filters to an image, `rate` stations per minute, with the optional
    guards (at most `max_concurrent` updating at once; pause at `pause_failures` failures or `pause_failure_percent`
    of the finished ones); audited."""

    required_role = Role.OPERATOR

    def post(self, request):
        post = request.POST
        image = get_object_or_404(FirmwareImage, pk=post.get("image") or 0)
        location = Location.objects.filter(pk=post.get("location")).first() if post.get("location") else None
        rate = post.get("rate", "10")
        if not rate.isdigit() or not 1 <= int(rate) <= 1000:
            messages.error(request, "Campaign not started: the rate is 1 to 1000 stations per minute")
            return HttpResponseRedirect(reverse("dashboard:firmware"))
        try:
            max_concurrent = _guard(post.get("max_concurrent", ""), most=100_000)
            pause_failures = _guard(post.get("pause_failures", ""), most=100_000)
            pause_failure_percent = _guard(post.get("pause_failure_percent", ""), most=100)
        except ValueError:
            messages.error(
                request,
                "Campaign not started: stations updating at once and failures to pause at are whole numbers from 1 "
                "(or empty), the failure share 1 to 100 %",
            )
            return HttpResponseRedirect(reverse("dashboard:firmware"))
        campaign, stations = firmware_campaign_start_staff(
            user=request.user,
            image=image,
            name=post.get("name", "").strip() or f"{image} rollout",
            rate=int(rate),
            vendor=post.get("vendor", "").strip()[:50],
            model=post.get("model", "").strip()[:50],
            firmware_version=post.get("firmware_version", "").strip()[:50],
            location=location,
            max_concurrent=max_concurrent,
            pause_failures=pause_failures,
            pause_failure_percent=pause_failure_percent,
        )
        messages.success(request, f"Campaign {campaign.name} started: {stations} stations, {campaign.rate} per minute")
        return HttpResponseRedirect(reverse("dashboard:firmware-campaign", args=[campaign.pk]))


class FirmwareCampaignControlView(RoleRequiredMixin, View):
    """POST to pause, resume, or retry the failed stations of a campaign; audited."""

    required_role = Role.OPERATOR

    def post(self, request, pk: int, operation: str):
        campaign = get_object_or_404(FirmwareCampaign, pk=pk)
        if operation == "pause":
            if firmware_campaign_pause_staff(user=request.user, campaign=campaign):
                messages.success(request, f"Campaign {campaign.name} paused: updates under way go on, no new ones")
            else:
                messages.error(request, f"Campaign {campaign.name} not paused: it is {campaign.get_status_display()}")
        elif operation == "resume":
            if firmware_campaign_resume_staff(user=request.user, campaign=campaign):
                messages.success(request, f"Campaign {campaign.name} resumed")
            else:
                messages.error(request, f"Campaign {campaign.name} not resumed: it is {campaign.get_status_display()}")
        elif operation == "retry":
            count = firmware_campaign_retry_staff(user=request.user, campaign=campaign)
            messages.success(
                request, f"Campaign {campaign.name}: {count} failed stations will be sent the update again"
            )
        else:
            raise Http404(operation)
        return HttpResponseRedirect(reverse("dashboard:firmware-campaign", args=[campaign.pk]))
