"""A real SMTP server (aiosmtpd) and a real HTTP SMS provider on loopback, recording what they receive."""
import email
import email.policy
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

from limonbilling.extensions import db
from limonbilling.services import audit, settings

from .http.servers import POLL_SECONDS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage

    @property
    def subject(self) -> str:
        return self.message["Subject"]

    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    def html(self) -> str:
        return self.message.get_body(("html",)).get_content()


class SmtpServer:
    """aiosmtpd on a fixed loopback port, so it can be stopped ("the mail server is down") and started again."""

    def __init__(self, delay: float = 0.0):
        self.port = free_port()
        self.delay = delay  # seconds each DATA takes, to widen races between senders
        self.received: list[Received] = []
        self.refuse: set[str] = set()  # recipients answered with 550
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    async def handle_RCPT(self, _server, _session, envelope, address, _options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server, _session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        if self.delay:
            time.sleep(self.delay)
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self._lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def start(self) -> "SmtpServer":
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def configure(self, **extra) -> None:
        """Point Settings → Notifications at this server."""
        settings.update({"smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_security": "none",
                         "smtp_from_address": "billing@limon.example", **extra}, audit.Actor.system("test"))
        db.session.commit()

    def to(self, address: str) -> list[Received]:
        return [mail for mail in self.received if address in mail.rcpt_tos]


class SmsProvider:
    """A local HTTP server that answers like an SMS gateway and records each request's parameters."""

    def __init__(self, status: int = 200):
        self.status = status
        self.requests: list[dict] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, params: dict) -> None:
                provider.requests.append({"method": self.command, "path": urlsplit(self.path).path,
                                          "auth": self.headers.get("Authorization"),
                                          **{key: values[0] for key, values in params.items()}})
                body = b"OK" if provider.status == 200 else b"ERROR"
                self.send_response(provider.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                self._answer(parse_qs(urlsplit(self.path).query))

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(parse_qs(self.rfile.read(length).decode()))

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/send"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(POLL_SECONDS,), daemon=True)

    def start(self) -> "SmsProvider":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def configure(self, **extra) -> None:
        settings.update({"sms_enabled": True, "sms_url": self.url, "sms_method": "POST",
                         "sms_parameters": "to={phone_digits}\nmessage={message}\nsender=LIMON", **extra},
                        audit.Actor.system("test"))
        db.session.commit()
