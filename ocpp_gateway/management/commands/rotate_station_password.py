from django.core.management.base import BaseCommand
from django.core.management.base import CommandError as DjangoCommandError

from ocpp_gateway.services.passwords import PasswordRotationRefused, RotationResult, station_password_rotate


class Command(BaseCommand):
    help = (
        "Give a connected charger a new HTTP Basic password, generated here and set with 1.6 ChangeConfiguration "
        "AuthorizationKey / 2.0.1 SetVariables SecurityCtrlr.BasicAuthPassword. The old password works until the "
        "charger logs in with the new one (or OCPP_PASSWORD_ROTATION_GRACE_SECONDS after it accepted). Needs "
        "REDIS_URL: the charger is connected to another process."
    )

    def add_arguments(self, parser):
        parser.add_argument("identity")
        parser.add_argument("--timeout", type=float, default=None, help="Seconds to wait for the charger's answer")
        parser.add_argument(
            "--show-password",
            action="store_true",
            help="Print the new password (once; it is stored hashed), e.g. to configure a replacement charger",
        )

    def handle(self, identity, timeout, show_password, **options):
        try:
            rotation = station_password_rotate(identity=identity, timeout=timeout)
        except PasswordRotationRefused as exc:
            raise DjangoCommandError(str(exc)) from exc
        if rotation.result == RotationResult.REJECTED:
            raise DjangoCommandError(f"{identity} kept its old password: {rotation.detail}")
        if rotation.result == RotationResult.UNCONFIRMED:
            self.stdout.write(f"{identity}: no answer ({rotation.detail}); old and new passwords both work")
        else:
            self.stdout.write(f"{identity} accepted its new password ({rotation.detail})")
        if show_password:
            self.stdout.write(f"new password: {rotation.password}")
