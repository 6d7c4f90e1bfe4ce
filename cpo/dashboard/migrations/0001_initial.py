"""The dashboard's models, moved from the cpo app (cpo 0002_auditlog and 0005_analytics_rollups created their
tables; cpo 0006_move_dashboard_models removed them from cpo's state).

State only: the tables keep their names (`db_table`), so their rows stay where they are. Their content types are
renamed to the dashboard's app label, so permissions and admin history that point at them follow the models."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MOVED = ["auditlog", "analyticsday", "analyticshour", "analyticslocationday", "analyticspartnerday"]


def content_types_move(old_label: str, new_label: str):
    def move(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        taken = set(ContentType.objects.filter(app_label=new_label, model__in=MOVED).values_list("model", flat=True))
        ContentType.objects.filter(app_label=old_label, model__in=set(MOVED) - taken).update(app_label=new_label)

    return move


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("cpo", "0006_move_dashboard_models"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="AuditLog",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("username", models.CharField(max_length=150)),
                        ("identity", models.CharField(blank=True, help_text="The station's identity at the time",
                                                      max_length=48)),
                        ("action", models.CharField(max_length=64)),
                        ("payload", models.JSONField(blank=True, default=dict)),
                        ("ok", models.BooleanField(default=False,
                                                   help_text="The charger answered (whatever the answer said)")),
                        ("answer", models.JSONField(blank=True, null=True)),
                        ("error", models.TextField(blank=True)),
                        ("station", models.ForeignKey(blank=True, null=True,
                                                      on_delete=django.db.models.deletion.SET_NULL,
                                                      related_name="audit_log", to="cpo.chargingstation")),
                        ("user", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                                   related_name="dashboard_audit_log", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        "db_table": "cpo_auditlog",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [models.Index(fields=["station", "-created_at"],
                                                 name="cpo_auditlo_station_b71a8c_idx")],
                    },
                ),
                migrations.CreateModel(
                    name="AnalyticsDay",
                    fields=[
                        ("day", models.DateField(primary_key=True, serialize=False)),
                        ("built_at", models.DateTimeField()),
                    ],
                    options={"db_table": "cpo_analyticsday"},
                ),
                migrations.CreateModel(
                    name="AnalyticsHour",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("hour", models.DateTimeField(unique=True)),
                        ("sessions", models.PositiveIntegerField(default=0)),
                        ("energy_wh", models.DecimalField(decimal_places=3, default=0, max_digits=16)),
                        ("busy_seconds", models.DecimalField(decimal_places=6, default=0, max_digits=16)),
                    ],
                    options={"db_table": "cpo_analyticshour"},
                ),
                migrations.CreateModel(
                    name="AnalyticsLocationDay",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("day", models.DateField()),
                        ("sessions", models.PositiveIntegerField(default=0)),
                        ("energy_wh", models.DecimalField(decimal_places=3, default=0, max_digits=16)),
                        ("busy_seconds", models.DecimalField(decimal_places=6, default=0, max_digits=16)),
                        ("location", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                                       to="cpo.location")),
                    ],
                    options={
                        "db_table": "cpo_analyticslocationday",
                        "constraints": [models.UniqueConstraint(fields=("day", "location"),
                                                                name="analytics_location_day_unique")],
                    },
                ),
                migrations.CreateModel(
                    name="AnalyticsPartnerDay",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("day", models.DateField()),
                        ("emsp_country_code", models.CharField(blank=True, max_length=2)),
                        ("emsp_party_id", models.CharField(blank=True, max_length=3)),
                        ("currency", models.CharField(max_length=3)),
                        ("cdrs", models.PositiveIntegerField(default=0)),
                        ("credits", models.PositiveIntegerField(default=0)),
                        ("energy_kwh", models.DecimalField(decimal_places=4, max_digits=16, null=True)),
                        ("revenue_excl_vat", models.DecimalField(decimal_places=4, max_digits=16, null=True)),
                        ("revenue_incl_vat", models.DecimalField(decimal_places=4, max_digits=16, null=True)),
                    ],
                    options={
                        "db_table": "cpo_analyticspartnerday",
                        "constraints": [models.UniqueConstraint(
                            fields=("day", "emsp_country_code", "emsp_party_id", "currency"),
                            name="analytics_partner_day_unique")],
                    },
                ),
            ],
        ),
        migrations.RunPython(content_types_move("cpo", "dashboard"), content_types_move("dashboard", "cpo")),
    ]
