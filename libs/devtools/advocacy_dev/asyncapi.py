"""The AsyncAPI 3.0 document of the event stream (docs/asyncapi.yaml), generated from the event models.

Everything in it comes from code, so it cannot drift from what the services publish: the topics
(:mod:`advocacy_common.topics`), one message per registered type (:data:`events.REGISTRY`) with its
Kafka key (:func:`event_schemas.partition_key_shape`), the CloudEvents headers every record carries
(:meth:`events.Envelope.headers`) and the payload's JSON Schema (:func:`event_schemas.event_schema`).
The partner feed ``advocacy.partner.{tenant}`` lists only partner-visible types, each with the
cut-down payload the forwarder sends (:mod:`advocacy_common.partner_feed`).

    python -m advocacy_dev.asyncapi           # rewrite docs/asyncapi.yaml
    python -m advocacy_dev.asyncapi --check   # exit 1 if the committed file differs
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

from advocacy_common import topics
from advocacy_common.events import REGISTRY
from advocacy_common.events.base import CONTENT_TYPE, SPECVERSION, EventData
from advocacy_common.partner_feed import HIDDEN, PARTNER_FIELDS
from advocacy_dev.event_schemas import event_schema, partition_key_shape

DOC_PATH = Path("docs/asyncapi.yaml")
REGENERATE = ".venv/bin/python -m advocacy_dev.asyncapi"
PARTNER_CHANNEL = "advocacy.partner"
KAFKA_BINDING_VERSION = "0.5.0"

_TOPIC_TEXT = {
    topics.CONTENT: "The advocacy board: content published, updated, expired, archived; policy, membership and "
    "tenant settings.",
    topics.SHARES: "Shares (tracked links) created, and employees' audience sizes per network.",
    topics.CLICKS: "Clicks on tracked links with their verdict (counted, bot, duplicate, self, rate_limited), and "
    "clicks invalidated after the fact.",
    topics.CLICKS_RAW: "Raw hits on /r/{code} as the redirect saw them, keyed by link; internal to the sharing "
    "service, whose verdict worker turns them into advocacy.clicks.",
    topics.CONVERSIONS: "Conversions partners reported against a click.",
    topics.GAMIFICATION: "The points ledger (awards and reversals), badges and reward redemptions.",
}


def _service_of(model: type[EventData]) -> str:
    """The service that publishes a type: the events module it is declared in."""
    return model.__module__.rsplit(".", 1)[-1]


def _hoist(schema: dict[str, Any], defs: dict[str, Any], owner: str) -> dict[str, Any]:
    """Move pydantic's ``$defs`` into components/schemas and point the ``$ref``s there."""
    schema = copy.deepcopy(schema)
    for name, definition in schema.pop("$defs", {}).items():
        definition = _rewrite_refs(definition)
        if name in defs and defs[name] != definition:
            raise ValueError(f"{owner}: schema {name!r} differs from another type's {name!r}; rename one model")
        defs[name] = definition
    rewritten: dict[str, Any] = _rewrite_refs(schema)
    return rewritten


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out[k] = v.replace("#/$defs/", "#/components/schemas/")
            else:
                out[k] = _rewrite_refs(v)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def _payload_schema(event_type: str) -> dict[str, Any]:
    schema = event_schema(event_type)
    # $id would rebase the $refs (they resolve inside this document); the JSON Schema file has it,
    # and it is where tools find that file: AsyncAPI wants an absolute URL (a relative one fails the
    # official parser), docs/events/<type>.json is the same file in the repository.
    schema_id = schema.pop("$id")
    schema["externalDocs"] = {"url": schema_id, "description": f"the JSON Schema (docs/events/{event_type}.json)"}
    return schema


def partner_keeps(name: str) -> bool:
    """Whether the partner forwarder keeps a payload field (the rule of partner_feed.partner_payload)."""
    return name not in HIDDEN and (name in PARTNER_FIELDS or name.endswith("_id") or name.endswith("_at"))


def partner_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The partner view of a payload schema: only the properties the forwarder keeps."""
    out = copy.deepcopy(schema)
    out["properties"] = {k: v for k, v in out.get("properties", {}).items() if partner_keeps(k)}
    out["required"] = [k for k in out.get("required", []) if partner_keeps(k)]
    out["title"] = f"{schema.get('title', '')} (partner feed)"
    return out


def _headers_schema(event_type: str, source: str) -> dict[str, Any]:
    return {
        "allOf": [
            {"$ref": "#/components/schemas/CloudEventsHeaders"},
            {
                "type": "object",
                "properties": {"ce_type": {"const": event_type}, "ce_source": {"const": source}},
            },
        ]
    }


_KEY_EXAMPLES = {"tenant": "acme", "employee_id": "emp-42", "content_id": "cnt-7", "code": "Xk3pQ9aZ"}


def _key_binding(event_type: str) -> dict[str, Any]:
    shape = partition_key_shape(event_type)
    return {
        "kafka": {
            "key": {
                "type": "string",
                "description": f"`{shape}`: the tenant id, then the entity whose events stay in order. Records "
                "with the same key go to the same partition, in publication order.",
                "examples": [":".join(_KEY_EXAMPLES.get(part, part) for part in shape.split(":"))],
            },
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


def _topic_binding(topic: str) -> dict[str, Any]:
    """The topic's declared retention and cleanup policy (advocacy_common.topics), as the Kafka
    channel binding spells them; replicas and partitions are the deployment's, so not here."""
    declared = topics.policy(topic)
    if declared is None:
        raise ValueError(f"{topic}: no policy declared in advocacy_common.topics")
    return {
        "kafka": {
            "topicConfiguration": {
                "cleanup.policy": [str(declared.cleanup)],
                "retention.ms": declared.retention_ms,
            },
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


def _summary(model: type[EventData]) -> str:
    doc = (model.__doc__ or "").strip()
    return " ".join(doc.split("\n\n", 1)[0].split()) if doc else model.TYPE


CLOUDEVENTS_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0, Kafka protocol binding, binary mode: the attributes travel as headers (UTF-8), "
    "the record value is the event's data alone. Deduplicate on (ce_source, ce_id).",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_tenantid", "content-type"],
    "properties": {
        "ce_specversion": {"type": "string", "const": SPECVERSION},
        "ce_id": {"type": "string", "format": "uuid", "description": "Unique per source; the same on a redelivery."},
        "ce_source": {
            "type": "string",
            "pattern": "^/advocacy/[a-z]+$",
            "description": "The publishing service, e.g. /advocacy/sharing.",
        },
        "ce_type": {"type": "string", "description": "The event type, versioned: io.advocacy.<noun>.<verb>.v<N>."},
        "ce_time": {"type": "string", "format": "date-time", "description": "When it happened (RFC 3339, UTC)."},
        "ce_subject": {"type": "string", "description": "The entity the event is about (e.g. the click id), if any."},
        "ce_tenantid": {"type": "string", "description": "The tenant (CloudEvents extension attribute)."},
        "ce_traceparent": {
            "type": "string",
            "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
            "description": "The W3C trace context (traceparent) of the request or consumed batch that wrote the event "
            "(CloudEvents distributed-tracing extension), present while tracing is on; consumers link their batch "
            "span to it. Internal topics only: the partner feed does not carry it.",
        },
        "ce_tracestate": {
            "type": "string",
            "description": "The W3C tracestate that goes with ce_traceparent, when there is one.",
        },
        "content-type": {"type": "string", "const": CONTENT_TYPE},
    },
}


def _message_id(event_type: str, partner: bool = False) -> str:
    return f"{event_type}.partner" if partner else event_type


def document() -> dict[str, Any]:
    """The AsyncAPI document as a dict, in a stable order."""
    schemas: dict[str, Any] = {"CloudEventsHeaders": CLOUDEVENTS_HEADERS}
    defs: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    by_topic: dict[str, list[str]] = {t: [] for t in topics.ALL_TOPICS}
    partner_types: list[str] = []

    for event_type in sorted(REGISTRY):
        model = REGISTRY[event_type]
        if model.TOPIC not in by_topic:
            raise ValueError(f"{event_type}: topic {model.TOPIC!r} is not in advocacy_common.topics.ALL_TOPICS")
        by_topic[model.TOPIC].append(event_type)
        source = f"/advocacy/{_service_of(model)}"
        payload = _hoist(_payload_schema(event_type), defs, event_type)
        schemas[event_type] = payload
        messages[_message_id(event_type)] = {
            "name": event_type,
            "title": model.__name__,
            "summary": _summary(model),
            "contentType": CONTENT_TYPE,
            "headers": _headers_schema(event_type, source),
            "payload": {"$ref": f"#/components/schemas/{event_type}"},
            "bindings": _key_binding(event_type),
        }
        if model.PARTNER_VISIBLE:
            partner_types.append(event_type)
            schemas[_message_id(event_type, partner=True)] = partner_schema(payload)
            description = "The partner view: ids, amounts and times only (no names, no visitor details)."
            if event_type == "io.advocacy.share.clicked.v1":
                description += " Only counted clicks are forwarded."
            messages[_message_id(event_type, partner=True)] = {
                "name": event_type,
                "title": f"{model.__name__} (partner feed)",
                "summary": _summary(model),
                "description": description,
                "contentType": CONTENT_TYPE,
                "headers": _headers_schema(event_type, source),
                "payload": {"$ref": f"#/components/schemas/{_message_id(event_type, partner=True)}"},
                "bindings": _key_binding(event_type),
            }
    schemas.update(sorted(defs.items()))

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in topics.ALL_TOPICS:
        types = by_topic[topic]
        channels[topic] = {
            "address": topic,
            "title": topic,
            "description": _TOPIC_TEXT.get(topic, topic)
            + " Internal: it mixes tenants; partners read their own feed (advocacy.partner.{tenant}).",
            "servers": [{"$ref": "#/servers/internal"}],
            "messages": {t: {"$ref": f"#/components/messages/{_message_id(t)}"} for t in types},
            "bindings": _topic_binding(topic),
        }
        operations[f"publish.{topic}"] = {
            "action": "send",
            "title": f"Publish to {topic}",
            "channel": {"$ref": f"#/channels/{topic}"},
            "messages": [{"$ref": f"#/channels/{topic}/messages/{t}"} for t in types],
        }
    example_tenant = _KEY_EXAMPLES["tenant"]
    channels[PARTNER_CHANNEL] = {
        "address": topics.PARTNER_FEED_PREFIX + "{tenant}",
        "title": "Partner feed",
        "description": "One topic per tenant with the tenant's partner-visible events, same CloudEvents headers and "
        "keys as the internal topics, payloads cut down to ids, amounts and times. A partner's credentials allow "
        f"reading its tenant's topic only, in consumer groups named {topics.PARTNER_GROUP_PREFIX}{{tenant}}"
        f"{topics.DELIMITER}<name> (e.g. {topics.partner_group(example_tenant, 'crm')}). See docs/partners.md.",
        "parameters": {
            "tenant": {
                "description": "The tenant id (the token's `tid` claim; `ce_tenantid`) as written in Kafka names: "
                "unchanged when made only of a-z, 0-9 and '-', otherwise each other character's UTF-8 bytes as '_' "
                "and two lower-case hex digits (Acme -> _41cme; docs/partners.md, Names).",
                "examples": [topics.tenant_segment(example_tenant), topics.tenant_segment("Acme.EU")],
            }
        },
        "servers": [{"$ref": "#/servers/partners"}, {"$ref": "#/servers/internal"}],
        "messages": {t: {"$ref": f"#/components/messages/{_message_id(t, partner=True)}"} for t in partner_types},
        "bindings": _topic_binding(topics.partner_feed(example_tenant)),
    }
    operations["publish.partner"] = {
        "action": "send",
        "title": "Forward to a tenant's partner feed",
        "channel": {"$ref": f"#/channels/{PARTNER_CHANNEL}"},
        "messages": [{"$ref": f"#/channels/{PARTNER_CHANNEL}/messages/{t}"} for t in partner_types],
    }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Advocacy event stream",
            "version": "1.0.0",
            "description": "Events the Advocacy services publish to Kafka, and the per-tenant partner feed. "
            "Generated from the event models (advocacy_common.events) by advocacy_dev.asyncapi; do not edit. "
            "Versioning: within a type's version changes are additive only (new optional fields); a breaking "
            "change is a new type (.v2) published beside the old one until consumers move. Consumers ignore "
            "unknown fields and unknown types.",
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "partners": {
                "host": "kafka.advocacy.example.com:9094",
                "protocol": "kafka-secure",
                "description": "The listener partners use: TLS and SCRAM-SHA-512, one user per partner, ACLs "
                "limited to its tenant's feed.",
                "security": [{"$ref": "#/components/securitySchemes/scram512"}],
            },
            "internal": {
                "host": "kafka:9092",
                "protocol": "kafka",
                "description": "Inside the deployment, reachable by the Advocacy services only. The services speak "
                "whatever the broker's listener needs (KAFKA_SECURITY_PROTOCOL: PLAINTEXT, SSL, SASL_PLAINTEXT or "
                "SASL_SSL; see the README): TLS with the CA (and, for mutual TLS, the client certificate and key) "
                "from settings, and SASL PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with one user per service whose "
                "ACLs cover its own topics and consumer groups. PLAINTEXT is for the embedded dev broker only.",
                "security": [
                    {"$ref": f"#/components/securitySchemes/{name}"}
                    for name in ("scram512", "scram256", "plain", "mtls")
                ],
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "scram512": {
                    "type": "scramSha512",
                    "description": "SASL SCRAM-SHA-512 over TLS: a partner's (or a service's) username and password.",
                },
                "scram256": {"type": "scramSha256", "description": "SASL SCRAM-SHA-256 over TLS."},
                "plain": {
                    "type": "plain",
                    "description": "SASL PLAIN: username and password in the clear, so only over TLS (SASL_SSL).",
                },
                "mtls": {
                    "type": "X509",
                    "description": "Mutual TLS (KAFKA_SECURITY_PROTOCOL=SSL): the client certificate names the user.",
                },
            },
        },
    }


def render() -> str:
    """docs/asyncapi.yaml's text."""
    import yaml

    header = (
        f"# Generated by advocacy_dev.asyncapi from the event models: do not edit.\n# Regenerate with: {REGENERATE}\n"
    )

    class _Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True  # no &id001 anchors: every schema spelled out where it is used

    return header + yaml.dump(document(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in args:
        if not DOC_PATH.exists() or DOC_PATH.read_text() != text:
            print(f"{DOC_PATH} is out of date; regenerate with: {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOC_PATH.write_text(text)
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
