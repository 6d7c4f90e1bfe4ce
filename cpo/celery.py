"""The Celery app. Without REDIS_URL tasks run in-process (CELERY_TASK_ALWAYS_EAGER), see settings."""

import os

from celery import Celery

from cpo.envfile import env_file_load

env_file_load()  # `celery -A cpo worker` starts here: the development .env, as for manage.py and daphne
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cpo.settings")

app = Celery("cpo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
