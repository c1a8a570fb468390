"""The Celery app. Tasks are found in each app's tasks.py; the beat schedule is
CELERY_BEAT_SCHEDULE in settings, the one place it is defined."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
