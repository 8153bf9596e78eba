"""Alert changes as plain-text e-mail over SMTP (STARTTLS or implicit TLS, optional AUTH).

The subject is written to be triaged on a phone's lock screen:
`[CRITICAL] Depot North: Storehouse 1: door SH1-D2 opened while armed`. A resolved mail
threads under its firing mail (In-Reply-To), and a retried mail keeps its Message-ID.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import ssl
from email.message import EmailMessage
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field, SecretStr, model_validator

from daemon.notifiers.common import CaFile, NotifierSettings, Site, clean
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.errors import NotifierError
from daemon.vocabulary.readings import Severity, TransitionKind

if TYPE_CHECKING:  # imported when a mail is sent: most gateways configure no email notifier
    import aiosmtplib

__all__ = ["EmailConfig", "EmailNotifier", "subject_line"]

log = logging.getLogger(__name__)

Address = Annotated[str, Field(pattern=r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$", max_length=254)]
_DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
# Room for the subject on a lock screen; the body has the rest.
_MAX_SUBJECT_CHARS = 140


class EmailConfig(NotifierSettings):
    """SMTP with STARTTLS (default), implicit TLS or none; a phone-friendly subject line."""

    example: ClassVar[dict[str, Any]] = {
        "type": "email", "host": "smtp.example.mil", "username": "depotwatch",
        "password": "${DEPOTWATCH_SMTP_PASSWORD}", "from_address": "depotwatch@example.mil",
        "to": ["duty-officer@example.mil"],
    }

    type: Literal["email"] = "email"
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    # starttls: required, never falls back to plain text; tls: implicit TLS (port 465).
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_address: Address
    to: list[Address] = Field(min_length=1)
    timeout_s: float = Field(default=30.0, gt=0, le=300)
    ca_file: CaFile | None = None

    @model_validator(mode="after")
    def _auth(self) -> EmailConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        if self.username is not None and self.security == "none":
            raise ValueError("a password is never sent without TLS: use security starttls or tls")
        return self

    def build(self, site: Site, name: str) -> EmailNotifier:
        """The notifier."""
        return EmailNotifier(self, site, name)


def subject_line(alert: Alert, site: Site) -> str:
    """`[CRITICAL] Depot North: <summary>`; resolved: `[RESOLVED critical] ...`."""
    tag = (alert.severity.value.upper() if alert.state is TransitionKind.FIRING
           else f"RESOLVED {alert.severity.value}")
    # Folded to one line: a newline in a header would be an injection.
    subject = " ".join(f"[{tag}] {site.name}: {alert.summary}".split())
    if len(subject) > _MAX_SUBJECT_CHARS:
        subject = subject[:_MAX_SUBJECT_CHARS - 1] + "…"
    return subject


class EmailNotifier:
    """One mail per alert change to every recipient, through aiosmtplib."""

    def __init__(self, config: EmailConfig, site: Site, name: str = "email") -> None:
        self.name = name
        self._config = config
        self._site = site
        self._port = config.port or _DEFAULT_PORTS[config.security]
        self._ssl: ssl.SSLContext | None = (
            ssl.create_default_context(cafile=str(config.ca_file)) if config.ca_file else None
        )
        self._secrets = [config.password.get_secret_value()] if config.password else []
        self.target = f"smtp {config.host}:{self._port}"

    def _message_id(self, alert: Alert, state: TransitionKind) -> str:
        digest = hashlib.sha256(f"{alert.key}\x00{alert.started_ns}".encode()).hexdigest()[:24]
        return f"<{state.value}.{digest}@{self._site.id}.depotwatch>"

    def message(self, alert: Alert) -> EmailMessage:
        """The mail for one alert change."""
        msg = EmailMessage()
        msg["Subject"] = subject_line(alert, self._site)
        msg["From"] = self._config.from_address
        msg["To"] = ", ".join(self._config.to)
        msg["Date"] = email.utils.formatdate(alert.changed_ns / 1e9, localtime=False)
        msg["Message-ID"] = self._message_id(alert, alert.state)
        if alert.state is TransitionKind.RESOLVED:
            first = self._message_id(alert, TransitionKind.FIRING)
            msg["In-Reply-To"] = first
            msg["References"] = first
        elif alert.severity is Severity.CRITICAL:
            msg["Importance"] = "high"
            msg["X-Priority"] = "1"
        # RFC 3834: no vacation auto-replies back to the gateway.
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Depotwatch-Key"] = alert.key
        msg.set_content(self.body(alert))
        return msg

    def body(self, alert: Alert) -> str:
        """Plain text: what, where, since when, the facts, the link."""
        site = self._site
        state = "FIRING" if alert.state is TransitionKind.FIRING else "RESOLVED"
        lines = [
            f"{alert.severity.value.upper()} alert {state} at {site.name} (site {site.id})",
            "",
            alert.summary,
            "",
        ]
        if alert.storehouse:
            lines.append(f"Storehouse: {site.storehouse_name(alert.storehouse)}"
                         f" ({alert.storehouse})")
        lines += [
            f"Subject:    {alert.subject}",
            f"Rule:       {alert.rule}",
            f"Started:    {site.local_time(alert.started_ns, alert.storehouse)}",
        ]
        if alert.state is TransitionKind.RESOLVED:
            lines.append(f"Resolved:   {site.local_time(alert.changed_ns, alert.storehouse)}")
        lines.append(f"Alert key:  {alert.key}")
        if alert.facts:
            lines += ["", "Facts:"]
            lines += [f"  {k}: {v}" for k, v in sorted(alert.facts.items())]
        link = site.link(alert)
        if link is not None:
            lines += ["", f"Acknowledge: {link}"]
        return "\n".join(lines) + "\n"

    async def send(self, alert: Alert) -> None:
        """Send the mail; SMTP 4xx, timeouts and lost connections are retryable, 5xx is not."""
        import aiosmtplib

        config = self._config
        try:
            errors, _ = await aiosmtplib.send(
                self.message(alert), hostname=config.host, port=self._port,
                username=config.username,
                password=config.password.get_secret_value() if config.password else None,
                use_tls=config.security == "tls",
                start_tls=config.security == "starttls",
                tls_context=self._ssl, timeout=config.timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:  # ssl and timeouts are OSErrors
            raise self._translate(exc) from exc
        for recipient, response in errors.items():
            log.warning("email %s: %s refused alert %s: %s %s", self.name, recipient,
                        alert.key, response.code, clean(response.message, self._secrets))

    def _translate(self, exc: aiosmtplib.SMTPException | OSError) -> NotifierError:
        """SMTP 4xx, timeouts, lost connections and TLS trouble are retryable; 5xx is not."""
        import aiosmtplib

        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            return self._error(f"every recipient refused: {detail}",
                               retryable=any(400 <= r.code < 500 for r in exc.recipients))
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            what = ("login refused" if isinstance(exc, aiosmtplib.SMTPAuthenticationError)
                    else "refused")
            return self._error(f"{what}: {exc.code} {exc.message}",
                               retryable=not 500 <= exc.code < 600)
        if isinstance(exc, TimeoutError):  # SMTPTimeoutError is one too
            return self._error(f"no answer within {self._config.timeout_s:g} s", retryable=True)
        if isinstance(exc, ssl.SSLError):
            return self._error(f"TLS failed: {exc.reason or type(exc).__name__}",
                               retryable=True)
        if isinstance(exc, aiosmtplib.SMTPNotSupported) or type(exc) is aiosmtplib.SMTPException:
            # The bare class is what aiosmtplib raises when the server offers no STARTTLS or
            # AUTH: a setting to fix (or a downgrade attack), never a retry in plain text.
            return self._error(f"not supported by the server: {exc.message}", retryable=False)
        message = exc.message if isinstance(exc, aiosmtplib.SMTPException) else str(exc)
        return self._error(f"{type(exc).__name__}: {message}", retryable=True)

    def _error(self, message: str, *, retryable: bool) -> NotifierError:
        return NotifierError(clean(f"{self.target}: {message}", self._secrets),
                             retryable=retryable)
