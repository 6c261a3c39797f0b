"""The webhook no longer falls back to WHATSAPP_APP_SECRET for a channel without its own app secret.

The channel `bootstrap` made from the WHATSAPP_* variables gets that secret stored on it (as bootstrap
now does on every run); any other Cloud channel without one is marked unhealthy, saying why its
deliveries are refused, until an admin sets its own app secret.
"""

from django.conf import settings
from django.db import migrations
from django.utils import timezone

NO_SECRET = "No app secret: webhook deliveries are refused until this channel's own app secret is set."


def forwards(apps, schema_editor):
    Channel = apps.get_model("whatsapp", "Channel")
    number, secret = settings.WHATSAPP_PHONE_NUMBER_ID, settings.WHATSAPP_APP_SECRET
    if number and secret:
        for channel in Channel.objects.filter(phone_number_id=number, app_secret=""):
            channel.app_secret = secret
            channel.save(update_fields=["app_secret"])
    Channel.objects.filter(kind="cloud", app_secret="").update(
        health="unhealthy", health_detail=NO_SECRET, health_changed_at=timezone.now()
    )


class Migration(migrations.Migration):
    dependencies = [("whatsapp", "0001_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
