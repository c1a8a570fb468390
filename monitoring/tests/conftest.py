"""Fixtures of the scenario in monitoring/tests/scenario.py: Greta Holm's course and a
staff member who receives clinic A's digests, on 20 Feb 2026 at 09:00."""

from __future__ import annotations

import socket
from datetime import datetime

import pytest
import time_machine
from django.utils import timezone


@pytest.fixture
def frozen():
    """20 Feb 2026, 09:00 (scenario.TODAY). Modules that use the scenario ask for it with
    `pytest.mark.usefixtures("frozen")`; a module with a `frozen` of its own overrides it."""
    with time_machine.travel(datetime(2026, 2, 20, 9, 0, tzinfo=timezone.get_current_timezone()), tick=False):
        yield


@pytest.fixture
def course(frozen, clinic_a, prescriber):
    from monitoring.tests.scenario import START
    from patients.services import course_start
    from patients.tests.factories import PatientFactory, clinic_ranges

    clinic_ranges(clinic_a)
    patient = PatientFactory(clinic=clinic_a, mrn="A-0042", first_name="Greta", last_name="Holm")
    return course_start(patient=patient, start_date=START, ordered_by=prescriber, recorded_by=prescriber)


@pytest.fixture
def staff_member(clinic_a):
    from accounts.tests.factories import MembershipFactory
    from monitoring.models import ClinicSettings

    user = MembershipFactory(user__username="sam", clinic=clinic_a, role="staff").user
    # No escalation unless a test asks for one (the LFT item here is 32 days overdue).
    ClinicSettings.objects.update_or_create(clinic=clinic_a, defaults={"escalation_days": 60})
    return user


class Sink:
    """An aiosmtpd handler that keeps what it receives, and from which connection."""

    def __init__(self):
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.peers: list[tuple[str, int]] = []  # the client's address of each message: one per connection

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        self.peers.append(session.peer)
        return "250 OK"


@pytest.fixture
def smtp_sink():
    """A local SMTP server (aiosmtpd) on a spare port."""
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    sink.port = port
    yield sink
    controller.stop()
