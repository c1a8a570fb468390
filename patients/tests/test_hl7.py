"""The laboratory's HL7 v2 feed (issue #15): ORU^R01 messages from tests/data, answered
AA / AE / AR, kept before they are acknowledged, and sent over a real MLLP socket on
loopback, including a message split across TCP reads."""

import asyncio
import socket
import threading
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from hl7.mllp import start_hl7_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.tests.factories import ClinicFactory, MembershipFactory
from patients import hl7_feed
from patients.management.commands import hl7_listen
from patients.models import LabImport, LabResult
from patients.tests.factories import PatientFactory, ReferenceRangeFactory, TreatmentCourseFactory
from protocols.analytes import ANALYTES
from protocols.dosing import DoseState

DATA = Path(__file__).parent / "data"
LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=LONDON)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def north(db):
    clinic = ClinicFactory(code="north", name="North", timezone="Europe/London")
    for analyte, uln in (("alt", "40"), ("ast", "40"), ("total_bilirubin", "1.2"), ("cpk", "200")):
        ReferenceRangeFactory(clinic=clinic, analyte=analyte, uln=Decimal(uln))
    p = PatientFactory(clinic=clinic, mrn="A100")
    TreatmentCourseFactory(patient=p, dose_state=DoseState.ON_DRUG, dose_mg_bid=600, start_date=date(2026, 9, 1))
    return clinic


def msg(name: str) -> bytes:
    return (DATA / name).read_bytes()


def msa(ack: str) -> list[str]:
    return next(line for line in ack.split("\r") if line.startswith("MSA")).split("|")


def errs(ack: str) -> list[list[str]]:
    return [line.split("|") for line in ack.split("\r") if line.startswith("ERR")]


def test_good_message_is_kept_stored_and_acknowledged(north):
    ack = hl7_feed.receive(msg("oru_r01_good.hl7"))
    assert msa(ack)[:3] == ["MSA", "AA", "MSG0001"]
    imp = LabImport.objects.get()
    assert bytes(imp.content) == msg("oru_r01_good.hl7") and imp.clinic == north and imp.ack_code == "AA"
    labs = {lab.analyte: lab for lab in LabResult.objects.all()}
    assert set(labs) == {"alt", "ast", "total_bilirubin"}
    assert labs["alt"].collected_at == datetime(2026, 11, 20, 9, 15, tzinfo=LONDON)
    assert {lab.source for lab in labs.values()} == {"hl7"} and labs["alt"].entered_by.username == "lab-feed"
    # Sent again (a resend after a lost ACK): acknowledged, nothing new.
    assert msa(hl7_feed.receive(msg("oru_r01_good.hl7")))[1] == "AA"
    assert LabResult.objects.count() == 3 and LabImport.objects.count() == 2


def test_two_obr_groups_flags_censored_values_and_a_v23_message(north):
    ack = hl7_feed.receive(msg("oru_r01_v23_flags_two_obr.hl7"))
    assert msa(ack)[1] == "AE" and msa(ack)[3] == "1 of 4 results refused (see ERR)"
    [err] = errs(ack)  # the local name is not known yet
    assert err[2] == "OBX^8^3" and err[3].startswith("103^") and err[4] == "E" and err[8].startswith("OBX 2: Unknown test") and "Leberwert" in err[8]
    alt = LabResult.objects.get(analyte="alt")
    assert alt.grade == 2 and alt.collected_at.hour == 8  # 130 U/L = 3.25 x ULN: > 3-5 x ULN, grade 2 (§8.1)
    bili = LabResult.objects.get(analyte="total_bilirubin")
    assert (bili.comparator, bili.reported_value) == ("<", Decimal("0.1"))
    cpk = LabResult.objects.get(analyte="cpk")
    assert cpk.value == Decimal("120") and cpk.collected_at.hour == 10  # 2 µkat/L, second OBR's time


def test_corrected_result_becomes_an_amendment_with_the_senders_reason(north):
    hl7_feed.receive(msg("oru_r01_good.hl7"))
    ack = hl7_feed.receive(msg("oru_r01_corrected.hl7"))
    assert msa(ack)[1] == "AA"
    old = LabResult.every.get(analyte="alt", status=LabResult.Status.AMENDED)
    new = LabResult.objects.get(analyte="alt")
    assert new.amends == old and new.reported_value == Decimal("300")
    assert "Sample re-run after haemolysis" in old.retired_reason
    assert LabResult.objects.filter(analyte="alt").count() == 1


def test_unknown_codes_are_refused_with_reasons_and_reprocessed_later(north, client):
    ack = hl7_feed.receive(msg("oru_r01_unknown_codes.hl7"))
    code, control, text = msa(ack)[1:4]
    assert (code, control, text) == ("AE", "MSG0004", "5 of 5 results refused (see ERR)")
    assert "No patient with MRN" in errs(ack)[0][8]
    imp = LabImport.objects.get()
    reasons = {row[0]: (row[2], row[3]) for row in imp.outcomes}
    assert [field for field, _ in reasons.values()] == ["mrn", "test", "unit", "status", "value"]
    assert imp.state == LabImport.State.FAILED and not LabResult.objects.exists()
    # Visible to the clinic's admins, who reprocess once the patient is registered.
    admin = MembershipFactory(clinic=north, role="admin").user
    client.force_login(admin)
    assert "MSG0004" in client.get(reverse("hl7_messages") + "?failed=1").content.decode()
    p = PatientFactory(clinic=north, mrn="Z999")
    TreatmentCourseFactory(patient=p, dose_state=DoseState.ON_DRUG, dose_mg_bid=600, start_date=date(2026, 9, 1))
    client.post(reverse("hl7_reprocess", args=[imp.pk]))
    assert LabResult.objects.filter(patient=p, analyte="alt").count() == 1
    imp.refresh_from_db()
    assert [a["code"] for a in imp.options["acks"]] == ["AE", "AE"]  # the first answer the lab got stays
    page = client.get(reverse("import_detail", args=[imp.pk])).content.decode()
    assert "OBX|1|NM|9999-9^Mystery^LN" in page, page[page.find('id="main"'):][:3000]
    assert "(to the laboratory)" in page and "Unknown test" in page
    # A nurse sees neither the list nor the button.
    nurse = MembershipFactory(clinic=north, role="nurse").user
    client.force_login(nurse)
    assert client.get(reverse("hl7_messages")).status_code == 403
    assert client.post(reverse("hl7_reprocess", args=[imp.pk])).status_code == 403


@pytest.mark.parametrize(("name", "reason"), [
    ("adt_a01_not_results.hl7", "only ORU^R01"),
    ("oru_r01_v22_unsupported.hl7", "version 2.2"),
    ("oru_r01_unknown_facility.hl7", "'elsewhere' is not a clinic"),
])
def test_messages_that_cannot_be_taken_are_rejected_but_kept(north, name, reason):
    ack = hl7_feed.receive(msg(name))
    assert msa(ack)[1] == "AR" and reason.replace("^", "\\S\\") in msa(ack)[3]  # HL7-escaped in MSA-3
    imp = LabImport.objects.get()
    assert imp.ack_code == "AR" and reason in imp.error and bytes(imp.content) == msg(name)
    assert not LabResult.objects.exists()


def test_rejected_messages_to_a_known_clinic_are_listed_for_its_admins(north, client):
    hl7_feed.receive(msg("adt_a01_not_results.hl7"))
    imp = LabImport.objects.get()
    assert imp.clinic == north and imp.ack_code == "AR"
    client.force_login(MembershipFactory(clinic=north, role="admin").user)
    assert "MSG0005" in client.get(reverse("hl7_messages") + "?failed=1").content.decode()


def test_the_mrn_is_the_pid3_repetition_of_type_mr(north):
    raw = msg("oru_r01_good.hl7").replace(b"PID|1||A100^^^CITYHOSP^MR||", b"PID|1||X123^^^OTHER^PI~A100^^^CITYHOSP^MR||")
    assert msa(hl7_feed.receive(raw))[1] == "AA"
    assert LabResult.objects.filter(patient__mrn="A100").count() == 3


def test_two_different_mrns_in_pid3_are_refused_not_guessed(north):
    PatientFactory(clinic=north, mrn="A101")
    raw = msg("oru_r01_good.hl7").replace(b"PID|1||A100^^^CITYHOSP^MR||", b"PID|1||A100^^^CITYHOSP^MR~A101^^^CITYHOSP^MR||")
    ack = hl7_feed.receive(raw)
    assert msa(ack)[1] == "AE" and not LabResult.objects.exists()
    assert all(e[2] == "PID^1^3" and e[3].startswith("204^") for e in errs(ack))


def test_not_hl7_at_all_is_rejected(north):
    ack = hl7_feed.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert msa(ack)[1] == "AR" and LabImport.objects.get().ack_code == "AR"


# --- Over a socket -------------------------------------------------------------------------


@pytest.fixture
def listener(transactional_db):
    """The listener's own handler on a free loopback port, in a thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(
        start_hl7_server(hl7_listen._serve, host="127.0.0.1", port=0), loop).result(10)
    yield server.sockets[0].getsockname()[1]

    async def stop():
        server.close()
        await server.wait_closed()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def _exchange(port: int, chunks: list[bytes]) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        for chunk in chunks:
            s.sendall(chunk)
            time.sleep(0.05)
        reply = b""
        while not reply.endswith(b"\x1c\r"):
            data = s.recv(4096)
            if not data:
                break
            reply += data
    assert reply.startswith(b"\x0b") and reply.endswith(b"\x1c\r")
    return reply[1:-2].decode()


def test_over_mllp_split_across_reads_and_two_messages_on_one_connection(transactional_db, listener):
    clinic = ClinicFactory(code="north", timezone="Europe/London")
    ReferenceRangeFactory(clinic=clinic, analyte="alt", uln=Decimal("40"))
    ReferenceRangeFactory(clinic=clinic, analyte="ast", uln=Decimal("40"))
    ReferenceRangeFactory(clinic=clinic, analyte="total_bilirubin", uln=Decimal("1.2"))
    PatientFactory(clinic=clinic, mrn="A100")
    framed = b"\x0b" + msg("oru_r01_good.hl7") + b"\x1c\r"
    thirds = [framed[:40], framed[40:len(framed) // 2], framed[len(framed) // 2:]]
    ack = _exchange(listener, thirds)
    assert msa(ack)[:3] == ["MSA", "AA", "MSG0001"]
    assert LabResult.objects.count() == 3
    # Two messages back to back in one write: two ACKs.
    both = framed + b"\x0b" + msg("adt_a01_not_results.hl7") + b"\x1c\r"
    with socket.create_connection(("127.0.0.1", listener), timeout=20) as s:
        s.sendall(both)
        reply = b""
        while reply.count(b"\x1c\r") < 2:
            data = s.recv(4096)
            if not data:
                break
            reply += data
    acks = [part.strip(b"\x0b").decode() for part in reply.split(b"\x1c\r") if part]
    assert [msa(a)[1] for a in acks] == ["AA", "AR"]


# --- Random messages never crash the feed nor save anything invalid -------------------------

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x0b\x1c"), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(code=st.sampled_from(["1742-6", "1920-8", "2157-6", "718-7", "9999-9", ""]) | _text,
       value_type=st.sampled_from(["NM", "SN", "ST", ""]) | _text,
       value=st.sampled_from(["35", "<^0.1", "-1", "1e400", "NaN", "1,500", ""]) | _text,
       unit=st.sampled_from(["U/L", "umol/L", "g/dL", "ukat/L", ""]) | _text,
       ref=st.sampled_from(["5-40", "<40", "40-5", ""]) | _text,
       when=st.sampled_from(["202611200915", "20261120", "209911200915", "202602301200", ""]) | _text,
       status=st.sampled_from(["F", "C", "P", ""]) | _text)
def test_random_obx_segments_never_crash_nor_save_anything_invalid(north, code, value_type, value, unit, ref, when,
                                                                    status):
    segments = ["MSH|^~\\&|LAB|H|APP|north|20261120101500||ORU^R01|X1|P|2.5.1", "PID|1||A100",
                f"OBR|1|||||{when}", f"OBX|1|{value_type}|{code}^^LN||{value}|{unit}|{ref}|||{status}"]
    ack = hl7_feed.receive("\r".join(segments).encode())
    assert msa(ack)[1] in ("AA", "AE", "AR")
    for lab in LabResult.objects.all():
        a = ANALYTES[lab.analyte]
        assert a.minimum <= lab.value <= a.maximum and lab.collected_at <= NOW
        lab_delete = LabResult.every.filter(pk=lab.pk)
        lab_delete.update(status=LabResult.Status.VOIDED)  # keep each example independent
