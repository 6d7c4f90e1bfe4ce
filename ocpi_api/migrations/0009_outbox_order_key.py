from django.db import migrations, models
from django.db.models import F


def order_by_object(apps, schema_editor):
    """Existing messages keep the order they had: one at a time per object."""
    apps.get_model("ocpi_api", "OutboxMessage").objects.update(order_key=F("object_key"))


class Migration(migrations.Migration):
    dependencies = [
        ("ocpi_api", "0008_merge_0007_outbox_sending_lease_0007_partner_party"),
    ]

    operations = [
        migrations.AlterField(
            model_name="outboxmessage",
            name="object_key",
            field=models.CharField(help_text="The object the message is about", max_length=120),
        ),
        migrations.AddField(
            model_name="outboxmessage",
            name="order_key",
            field=models.CharField(
                default="", help_text="Messages of one order key go out one at a time, in order", max_length=120
            ),
            preserve_default=False,
        ),
        migrations.RunPython(order_by_object, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="outboxmessage",
            index=models.Index(fields=["partner", "order_key", "status"], name="outbox_order"),
        ),
    ]
