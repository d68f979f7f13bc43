"""What people call the codes the definitions use as values: choice values, by code, in Dutch and English.

A definition's states, steps, fields, documents and deadlines carry their own `label`/`label_en`;
a choice value is a code shared by several definitions, so its words live here once. Loading a
definition fails when one of its codes has no words (engine.definitions.missing_labels), so a new
code cannot reach a page, a letter or an e-mail as it is spelled in the YAML.
"""
from __future__ import annotations

from . import roles

CHOICES: dict[str, tuple[str, str]] = {
    "progress_meeting": ("Voortgangsgesprek", "Progress meeting"),
    "suitability_assessment": ("Geschiktheidsbeoordeling", "Suitability assessment"),
    "final_assessment": ("Eindbeoordeling", "Final assessment"),
    "suitable": ("Geschikt", "Suitable"),
    "extend": ("Opleiding verlengen", "Extend the training"),
    "unsuitable": ("Ongeschikt", "Unsuitable"),
    "shop_floor": ("Werkvloer", "Shop floor"),
    "quality_instrument": ("Kwaliteitsinstrument", "Quality instrument"),
    "visitation": ("Visitatie", "Visitation"),
    "aios": ("Een aios", "An aios"),
    "other": ("Anders", "Other"),
    "quality": ("Kwaliteitseisen (art. 2.6)", "Quality requirements (art. 2.6)"),
    "obligations": ("Verplichtingen (art. 2.7)", "Obligations (art. 2.7)"),
    "illness": ("Ziekte", "Illness"),
    "leave": ("Verlof", "Leave"),
}

# Roles named in a definition (who may act, who owns a level, who is told), and the words for them.
ROLE_WORDS: dict[str, tuple[str, str]] = {
    **{r.key: (r.label_nl, r.label) for r in roles.CATALOGUE},
    **{k: (v[1], v[0]) for k, v in roles.PSEUDO_LABELS.items()},
    "owner": ("eigenaar van het niveau", "Owner of the level"),
}


def labels() -> dict[str, tuple[str, str]]:
    """The registry's vocabulary: "choice.<value>" and "role.<key>" → (Dutch, English)."""
    return {**{f"choice.{k}": v for k, v in CHOICES.items()}, **{f"role.{k}": v for k, v in ROLE_WORDS.items()}}
