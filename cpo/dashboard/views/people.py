"""Tokens (own RFID cards; partners' tokens read-only) and staff users with their roles."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views import View

from cpo.dashboard.forms import StaffUserForm, TokenForm, TokenImportForm
from cpo.dashboard.permissions import ROLE_BY_GROUP, Role, RoleRequiredMixin, user_role
from cpo.dashboard.tokens import IMPORT_COLUMNS, token_block, token_create, tokens_import
from cpo.dashboard.users import staff_user_activate, staff_user_create, staff_user_role_change
from cpo.dashboard.views.base import DashboardView
from cpo.models import Token
from ocpi_api.models import PartnerToken

PAGE_SIZE = 50


class TokenListView(DashboardView):
    template_name = "dashboard/token_list.html"
    nav = "tokens"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = self.request.GET.get("q", "").strip()[:64]
        status = self.request.GET.get("status", "")
        own = Token.objects.order_by("uid")
        partner = PartnerToken.objects.select_related("partner").order_by("country_code", "party_id", "uid")
        if query:
            match = Q(uid__icontains=query) | Q(contract_id__icontains=query) | Q(visual_number__icontains=query)
            own, partner = own.filter(match), partner.filter(match)
        if status in ("valid", "blocked"):
            own, partner = own.filter(valid=status == "valid"), partner.filter(valid=status == "valid")
        params = self.request.GET.copy()
        for name in ("page", "ppage"):
            params.pop(name, None)
        context.update(
            q=query,
            status=status,
            query=params.urlencode(),
            tokens=Paginator(own, PAGE_SIZE).get_page(self.request.GET.get("page")),
            partner_tokens=Paginator(partner, PAGE_SIZE).get_page(self.request.GET.get("ppage")),
            form=kwargs.get("form") or TokenForm(),
            import_form=kwargs.get("import_form") or TokenImportForm(),
            import_columns=IMPORT_COLUMNS,
            report=kwargs.get("report"),
        )
        return context


class TokenCreateView(TokenListView):
    required_role = Role.OPERATOR

    def post(self, request):
        form = TokenForm(request.POST)
        if form.is_valid():
            try:
                token = token_create(user=request.user, data=form.cleaned_data)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"Token {token.uid} added")
                return HttpResponseRedirect(reverse("dashboard:tokens"))
        return self.render_to_response(self.get_context_data(form=form), status=400)


class TokenImportView(TokenListView):
    required_role = Role.OPERATOR

    def post(self, request):
        form = TokenImportForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(import_form=form), status=400)
        report = tokens_import(user=request.user, text=form.cleaned_data["text"])
        if report.ok:
            messages.success(
                request,
                f"Imported: {report.created} added, {report.updated} updated, {report.unchanged} unchanged",
            )
            return HttpResponseRedirect(reverse("dashboard:tokens"))
        return self.render_to_response(self.get_context_data(import_form=form, report=report), status=400)


class TokenBlockView(RoleRequiredMixin, View):
    required_role = Role.OPERATOR

    def post(self, request, pk: int, action: str):
        if action not in ("block", "unblock"):
            raise Http404("No such token action")
        token = get_object_or_404(Token, pk=pk)
        token_block(user=request.user, token=token, valid=action == "unblock")
        messages.success(request, f"Token {token.uid} {'unblocked' if token.valid else 'blocked'}")
        return HttpResponseRedirect(reverse("dashboard:tokens") + f"?q={token.uid}")


class UserListView(DashboardView):
    template_name = "dashboard/user_list.html"
    nav = "users"
    required_role = Role.ADMIN

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        users = get_user_model().objects.prefetch_related("groups").order_by("-is_active", "username")
        context.update(
            users=[(user, user_role(user)) for user in users[:500]],
            roles=[role.group_name for role in Role],
            form=kwargs.get("form") or StaffUserForm(),
        )
        return context

    def post(self, request):
        form = StaffUserForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                user = staff_user_create(
                    by=request.user,
                    username=data["username"],
                    email=data["email"],
                    role=ROLE_BY_GROUP[data["role"]],
                    password=data["password"],
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"User {user.username} created as {data['role']}")
                return HttpResponseRedirect(reverse("dashboard:users"))
        return self.render_to_response(self.get_context_data(form=form), status=400)


class UserActionView(RoleRequiredMixin, View):
    """POST: change a user's role (`role` field), deactivate or activate them."""

    required_role = Role.ADMIN

    def post(self, request, pk: int, action: str):
        user = get_object_or_404(get_user_model(), pk=pk)
        try:
            if action == "role":
                role = ROLE_BY_GROUP.get(request.POST.get("role", ""))
                if role is None:
                    raise ValidationError("Choose a role.")
                staff_user_role_change(by=request.user, user=user, role=role)
                messages.success(request, f"{user.username} is {role.group_name} now")
            elif action in ("deactivate", "activate"):
                staff_user_activate(by=request.user, user=user, active=action == "activate")
                messages.success(request, f"{user.username} {action}d")
            else:
                raise Http404("No such user action")
        except ValidationError as exc:
            messages.error(request, f"{user.username}: " + " ".join(exc.messages))
        return HttpResponseRedirect(reverse("dashboard:users"))
