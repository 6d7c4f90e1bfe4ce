"""The frame every dashboard page shares (the role check, what the user may do) and logging in and out."""

from django.contrib.auth import views as auth_views
from django.views.generic import TemplateView

from cpo.dashboard.permissions import Role, RoleRequiredMixin, user_role


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True
    next_page = "dashboard:overview"


class LogoutView(auth_views.LogoutView):
    next_page = "dashboard:login"


class DashboardView(RoleRequiredMixin, TemplateView):
    """A page: the role check, and what the current user may do (templates hide buttons; views check again)."""

    nav = ""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        role = user_role(self.request.user)
        context.update(
            nav=self.nav,
            dashboard_role=role.group_name if role else "",
            can_operate=role is not None and role >= Role.OPERATOR,
            can_administer=role is not None and role >= Role.ADMIN,
        )
        return context
