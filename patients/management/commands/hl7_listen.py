"""The laboratory feed's listener: HL7 v2 over MLLP (issue #15).

    python manage.py hl7_listen --host 0.0.0.0 --port 2575

Each message is framed and unframed by python-hl7's MLLP streams, kept in the database
before anything is read from it, processed through the intake path, and answered with an
ACK (AA, AE or AR; patients.hl7_feed). When the message cannot even be kept (the
database is down), no ACK is sent and the connection is closed: the sender keeps the
message and sends it again, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from django.core.management.base import BaseCommand
from django.db import close_old_connections
from hl7.mllp import start_hl7_server

from patients import hl7_feed

log = logging.getLogger("patients.hl7")
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # one message; python-hl7 refuses a longer block


def handle_message(raw: bytes) -> str:
    close_old_connections()  # a long-lived thread: drop a connection the database closed
    try:
        return hl7_feed.receive(raw)
    finally:
        close_old_connections()


async def _serve(reader, writer) -> None:
    peer = writer.get_extra_info("peername")
    try:
        while not writer.is_closing():
            raw = await reader.readblock()  # MLLP unframed by python-hl7; kept byte for byte
            try:
                reply = await asyncio.to_thread(handle_message, raw)
            except Exception:
                log.exception("HL7 message from %s could not be kept; no ACK sent, the sender will resend", peer)
                break
            writer.writeblock(reply.encode("utf-8"))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the sender closed the connection
    except Exception:
        log.exception("HL7 connection from %s ended on an error", peer)
    finally:
        writer.close()


class Command(BaseCommand):
    help = "Listen for HL7 v2 ORU^R01 results over MLLP and acknowledge each one."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=2575)

    def handle(self, *args, host: str, port: int, **options) -> None:
        asyncio.run(self._main(host, port))

    async def _main(self, host: str, port: int) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        server = await start_hl7_server(_serve, host=host, port=port, limit=MAX_MESSAGE_BYTES)
        self.stdout.write(f"HL7 MLLP listener on {host}:{port}", ending="\n")
        self.stdout.flush()
        async with server:
            await stop.wait()
