"""The dashboard's roles as Django groups: viewer (read-only), operator (also sends commands), admin (also onboards
stations; later tariffs and partners). Superusers count as admin without a group."""

from django.db import migrations

ROLES = ["viewer", "operator", "admin"]


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


def delete_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.filter(name__in=ROLES, user__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("cpo", "0002_auditlog"),
    ]

    operations = [migrations.RunPython(create_groups, delete_groups)]
