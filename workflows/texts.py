"""The Dutch texts the engine writes (its English ones are in engine/builtins.py, under the same names).

Subjects here are the stored subject of an outbox row, which Dutch readers get; English
readers get the kind's template in notifications/templates/mail/en/ or the definition's
`subject_en`.
"""
from __future__ import annotations

TEXTS_NL = {
    "unmet.input.required.nl": "{label} is verplicht",
    "unmet.input.min_items.nl": "{label} heeft minstens {n} item(s) nodig",
    "unmet.input.must_be.nl": "{label} moet {value} zijn",
    "value.True.nl": "ja",
    "value.False.nl": "nee",
    "unmet.min_items.nl": "minstens {min} {label} nodig, er zijn er {count}",
    "unmet.document_signed.unwritten.nl": "{title} is nog niet opgesteld",
    "unmet.document_signed.unsigned.nl": "{title} (versie {version}) is nog niet door iedereen ondertekend",
    "unmet.field_equals.nl": "{label} moet {value} zijn",
    "unmet.deadline_open.nl": "er is geen openstaande {name}",
    "unmet.not_before.nl": "{label} mag niet vóór {other} liggen",
    "subject.signature_requested.nl": "Ter ondertekening: {document} ({title})",
    "subject.document_signed.nl": "Ondertekend: {document} ({title})",
    "subject.reminder_sent.nl": "Herinnering van het volgende niveau: {label} is verstreken ({title})",
    "subject.document_dissented.nl": "Getekend voor gezien, niet akkoord: {document} ({title})",
    "subject.deadline_reminder.nl": "Herinnering: {label} uiterlijk {due:%d-%m-%Y}",
    "subject.deadline_overdue.nl": "Termijn verstreken: {label} ({due:%d-%m-%Y})",
    "escalation.reason.nl": "Termijn verstreken: {label} (automatisch)",
    "escalation.actor.nl": "Traject (automatisch)",
    "inbox.document.nl": "{title} (versie {version})",
    "redacted.nl": "[vertrouwelijk]",
}
