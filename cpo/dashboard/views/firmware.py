"""Firmware: images (uploaded in the admin), campaigns with their progress, and starting one; one station's update
is started from its page (cpo.dashboard.views.stations)."""

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views import View

from cpo.dashboard.permissions import Role, RoleRequiredMixin
from cpo.dashboard.services import firmware_campaign_start_staff
from cpo.dashboard.views.base import DashboardView
from cpo.models import Location
from ocpp_gateway.models import FirmwareCampaign, FirmwareImage
from ocpp_gateway.services.firmware import firmware_campaign_progress


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


class FirmwareCampaignStartView(RoleRequiredMixin, View):
    """POST: update every station matching the filters to an image, `rate` stations per minute; audited."""

    required_role = Role.OPERATOR

    def post(self, request):
        post = request.POST
        image = get_object_or_404(FirmwareImage, pk=post.get("image") or 0)
        location = Location.objects.filter(pk=post.get("location")).first() if post.get("location") else None
        rate = post.get("rate", "10")
        if not rate.isdigit() or not 1 <= int(rate) <= 1000:
            messages.error(request, "Campaign not started: the rate is 1 to 1000 stations per minute")
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
        )
        messages.success(request, f"Campaign {campaign.name} started: {stations} stations, {campaign.rate} per minute")
        return HttpResponseRedirect(reverse("dashboard:firmware"))
