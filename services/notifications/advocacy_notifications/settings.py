from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from advocacy_common import action_links
from advocacy_common.settings import ServiceSettings
from advocacy_common.signing_keys import SigningKey


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore")
    service_name: ClassVar[str] = "notifications"
    default_port: ClassVar[int] = 8005

    # The SMTP relay mail is handed to. The dev stack runs one in-process on SMTP_PORT (aiosmtpd,
    # `advocacy mail` reads what it kept); production points these at any relay.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(8025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # "starttls" upgrades a plain connection (port 587), "tls" connects over TLS (port 465).
    smtp_security: str = Field("none", pattern="^(none|starttls|tls)$")
    smtp_timeout_seconds: float = Field(10.0, gt=0)
    mail_from: str = Field("Advocacy <advocacy@localhost>", max_length=320)
    # Where the links in a message point (the one-click unsubscribe route of this service).
    public_base_url: str = Field("http://127.0.0.1:8005", max_length=2048)
    # Key for the signed links in messages (unsubscribe), the same on every replica. Unset: a random
    # key made once by migration 0001 and kept in the database.
    link_secret: Annotated[SecretStr | None, SigningKey(generated_when_unset=True)] = None
    # One-click share buttons in digests (ADR 0016): the private half (a P-256 JWK) of the key they
    # are signed with; sharing holds the public half (SHARING_ACTION_LINK_PUBLIC_KEY). Unset: the
    # published dev pair in dev mode (refused outside it), else digests carry no buttons.
    action_link_private_key: Annotated[SecretStr | None, SigningKey(generated_when_unset=True)] = None
    # How long a button works (at most 30 days: a forwarded message should not share much later).
    action_link_ttl_hours: int = Field(72, ge=1, le=720)
    # Where the buttons point: sharing's public base URL (its /v1/share-actions).
    share_base_url: str = Field("http://127.0.0.1:8002", max_length=2048)
    _action_key: str | None = PrivateAttr(default=None)
    # Worker loops: how often the digest scheduler looks for due digests, and how often the sender
    # looks for pending mail (it is also woken when mail is queued).
    digest_interval_seconds: float = Field(60.0, gt=0)
    send_interval_seconds: float = Field(5.0, gt=0)
    # At most this many messages handed to SMTP per pass (one connection per pass).
    send_batch: int = Field(100, ge=1, le=10_000)
    # SMTP sessions a pass holds open side by side (a session waits for the relay's reply to each
    # command; several keep it busy: bench/notifications.py). The price: a process killed between a
    # hand-over and its record may re-send one message per session (features/mail.py), so 1 keeps
    # the documented window at one message. Relays limit connections per client: keep it small.
    smtp_connections: int = Field(1, ge=1, le=16)
    # A session claims this many due messages at a time and records those it handed over in one
    # statement and one commit (features/mail.py): fewer statements per message, and a wider
    # window: a process killed in a group's hand-overs re-sends what the group had sent so far.
    send_group: int = Field(1, ge=1, le=1000)
    # At most this many people receive their digest per scheduler pass (the rest wait for the next).
    digest_batch: int = Field(500, ge=1, le=100_000)
    # Team channels (Slack, Teams): the tenant's webhook URLs go through the outbound guard
    # (advocacy_common.ssrf, ADR 0009) when saved and when posted to; private and loopback
    # addresses (and plain http) are refused unless this is set (tests, labs).
    webhook_allow_private: bool = False
    # One post, all of it (resolve, connect, TLS, send, answer), within this; at most this much of
    # the answer read. The sender looks for pending chat messages this often, this many per pass.
    webhook_deadline_seconds: float = Field(10.0, gt=0, le=60)
    webhook_max_response_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024)
    webhook_interval_seconds: float = Field(2.0, gt=0)
    webhook_batch: int = Field(100, ge=1, le=10_000)

    @model_validator(mode="after")
    def _action_link_key(self) -> NotificationsSettings:
        self._action_key = action_links.configured_key(
            self.action_link_private_key.get_secret_value() if self.action_link_private_key else None,
            private=True,
            dev_mode=self.dev_mode,
            env="NOTIFICATIONS_ACTION_LINK_PRIVATE_KEY",
        )
        return self

    @property
    def action_key(self) -> str | None:
        """The key share buttons are signed with (None: no buttons)."""
        return self._action_key


# The CloudEvents source of every event this service publishes.
SOURCE = NotificationsSettings.event_source()
