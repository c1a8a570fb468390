"""One factory per model of protocols (style.md 3.5). The published library is loaded by
a data migration; these build a clinic's own protocol.

    DesensitizationProtocolFactory(clinic=clinic_a, steps=[(150, 150, 2), (600, 600, 1)])
"""

from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from protocols.models import DesensitizationProtocol, DesensitizationStep


class DesensitizationProtocolFactory(DjangoModelFactory[DesensitizationProtocol]):
    """A clinic's own protocol, no steps and not approved unless asked: pass
    `steps=[(morning_mg, evening_mg, days), …]` and `steps_approved_by=prescriber`."""

    class Meta:
        model = DesensitizationProtocol
        skip_postgeneration_save = True

    clinic = factory.SubFactory("accounts.tests.factories.ClinicFactory")
    name = factory.Sequence(lambda n: f"Clinic protocol {n}")
    source = "Clinic policy"
    start_dose = "150 mg"
    final_dose = "600 mg twice daily"

    @factory.post_generation
    def steps(self, create: bool, extracted: list[tuple[int, int, int]] | None, **kwargs) -> None:
        if not create:
            return
        for order, (morning, evening, days) in enumerate(extracted or [], start=1):
            DesensitizationStepFactory(protocol=self, order=order, morning_mg=morning, evening_mg=evening, days=days)


class DesensitizationStepFactory(DjangoModelFactory[DesensitizationStep]):
    class Meta:
        model = DesensitizationStep

    protocol = factory.SubFactory(DesensitizationProtocolFactory)
    order = factory.Sequence(lambda n: n + 1)
    morning_mg = 150
    evening_mg = 150
    days = 2
