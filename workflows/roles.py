"""The role catalogue: every role a user can hold, once (CONTRACT.md section 3).

Where a role is held (at an institution, or in the region), who sees the region overview, who
sees everything, and what people call it. The CLI, the pages, the exports and the demo read it
from here; the engine receives what it needs as data (`EngineConfig.superuser_roles`, set in
web/app.py), because the engine never imports `workflows`.

The order is the order of the sections on the start page: the people who act most come first.
"""
from __future__ import annotations

from dataclasses import dataclass


def N_(text: str) -> str:
    """Marks a label for the translation catalogue (web/babel.cfg); the pages translate it when shown."""
    return text


@dataclass(frozen=True)
class Role:
    key: str
    regional: bool  # held in the region (assigned without an institution), else at an institution
    label: str  # English, the message id the pages translate (Dutch by default)
    label_nl: str  # the Dutch name in documents that are always Dutch (the subject access export)
    overview: bool = False  # sees the region overview (counts only), CONTRACT.md section 3
    superuser: bool = False  # sees and may do everything; every read is still access-logged
    programme: bool = False  # bound to one training programme (CONTRACT.md section 7)
    deputy_of: str = ""  # may do what this role may, recorded as acting on behalf of the case's responsible


CATALOGUE: tuple[Role, ...] = (
    Role("opleider", False, N_("Opleider"), "opleider", programme=True),
    Role("plv_opleider", False, N_("Deputy opleider"), "plv. opleider", programme=True, deputy_of="opleider"),
    Role("aios", False, N_("Aios"), "aios"),
    Role("coc_chair", False, N_("COC chair"), "voorzitter COC"),
    Role("hr", False, N_("HR"), "HR"),
    Role("rvb", False, N_("Board of directors"), "raad van bestuur"),
    Role("rso_board", True, N_("RSO board"), "bestuur RSO", overview=True, programme=True),
    Role("rso_chair", True, N_("RSO chair"), "voorzitter RSO", overview=True, programme=True),
    Role("r_coc_chair", True, N_("R-COC chair"), "voorzitter R-COC", overview=True),
    Role("regio_bestuur", True, N_("Regional board"), "Regio-Bestuur", overview=True),
    Role("vertrouwenspersoon", True, N_("Confidential adviser"), "vertrouwenspersoon"),
    Role("admin", True, N_("Administrator"), "beheerder", superuser=True),
)

# The pseudo-roles of a definition (engine.definitions.PSEUDO_ROLES): a person's relation to one case.
PSEUDO_LABELS: dict[str, tuple[str, str]] = {
    "subject": (N_("Aios"), "aios van het traject"),
    "opener": (N_("Submitter"), "indiener"),
    "responsible": (N_("Responsible opleider"), "verantwoordelijk opleider"),
}

BY_KEY: dict[str, Role] = {r.key: r for r in CATALOGUE}
ROLES: tuple[str, ...] = tuple(BY_KEY)
INSTITUTION_ROLES: tuple[str, ...] = tuple(r.key for r in CATALOGUE if not r.regional)
REGIONAL_ROLES: tuple[str, ...] = tuple(r.key for r in CATALOGUE if r.regional)
OVERVIEW_ROLES: tuple[str, ...] = tuple(r.key for r in CATALOGUE if r.overview)
SUPERUSER_ROLES: tuple[str, ...] = tuple(r.key for r in CATALOGUE if r.superuser)
PROGRAMME_ROLES: tuple[str, ...] = tuple(r.key for r in CATALOGUE if r.programme)
DEPUTIES: dict[str, str] = {r.key: r.deputy_of for r in CATALOGUE if r.deputy_of}

# What people call a role or a pseudo-role: English (to be translated) and Dutch.
LABELS: dict[str, str] = {**{r.key: r.label for r in CATALOGUE}, **{k: v[0] for k, v in PSEUDO_LABELS.items()}}
LABELS_NL: dict[str, str] = {**{r.key: r.label_nl for r in CATALOGUE},
                             **{k: v[1] for k, v in PSEUDO_LABELS.items()}}

# Who reads and who edits a training record, and where they hold the role (CONTRACT.md section 7);
# the aios reads their own, the administrator everything (docs/training-record.md).
RECORD_READERS: dict[str, str] = {"opleider": "placement", "plv_opleider": "placement", "coc_chair": "placement",
                                  "hr": "employer"}
RECORD_EDITORS: dict[str, str] = {"opleider": "placement", "coc_chair": "placement"}

# Notes on a case (docs/notes.md): for the people who work on it, within the case's scope. HR reads a GBT for
# its consequences for employment, not the guidance's working notes; the overview roles never read about a
# person (on organisational cases, where they own levels, they are participants like any other).
NOTES_EXCLUDED: frozenset[str] = frozenset({"hr"})
NOTES_EXCLUDED_ON_PERSONAL: frozenset[str] = NOTES_EXCLUDED | frozenset(OVERVIEW_ROLES)


def notes_excluded(category: str) -> frozenset[str]:
    return NOTES_EXCLUDED_ON_PERSONAL if category == "personal" else NOTES_EXCLUDED
