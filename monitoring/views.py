from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from monitoring.models import Heartbeat


@login_not_required
@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """For load balancers and the admins: database reachable, scheduler alive.

    Carries no patient data. 200 when the database answers; the heartbeat age says
    whether beat and a worker are running (stale after HEARTBEAT_STALE_SECONDS).
    """
    body: dict[str, object] = {"database": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        beat = Heartbeat.objects.filter(name="heartbeat").first()
    except Exception:  # noqa: BLE001 - any database failure is "down" to a load balancer
        return JsonResponse({"database": "down"}, status=503)
    if beat is None:
        body.update(scheduler="never-run", heartbeat_at=None)
    else:
        age = (timezone.now() - beat.last_run_at).total_seconds()
        body.update(
            scheduler="ok" if age <= settings.HEARTBEAT_STALE_SECONDS else "stale",
            heartbeat_at=beat.last_run_at.isoformat(),
            heartbeat_age_seconds=int(age),
        )
    return JsonResponse(body)


def home(request: HttpRequest):
    """The nurse's start page: what needs doing today."""
    from django.shortcuts import render

    from monitoring import selectors

    context = {
        "recommendations": list(selectors.pending_recommendations(user=request.user)),
        "withheld": selectors.withheld_courses(user=request.user),
    }
    return render(request, "monitoring/worklist.html", context)
