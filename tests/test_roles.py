"""The role catalogue (workflows/roles.py) against the contract and the definitions; no app needed."""
from __future__ import annotations

from engine.definitions import PSEUDO_ROLES
from workflows import load_definitions
from workflows import roles


def test_it_holds_the_roles_of_the_contract():
    # CONTRACT.md section 3
    assert set(roles.INSTITUTION_ROLES) == {"aios", "opleider", "coc_chair", "rvb", "hr"}
    assert set(roles.REGIONAL_ROLES) == {"rso_board", "rso_chair", "r_coc_chair", "regio_bestuur", "vertrouwenspersoon",
                                    "admin"}
    assert set(roles.OVERVIEW_ROLES) == {"rso_board", "rso_chair", "r_coc_chair", "regio_bestuur"}
    assert roles.SUPERUSER_ROLES == ("admin",)
    assert roles.ROLES == roles.INSTITUTION_ROLES + roles.REGIONAL_ROLES  # the start page's order


def test_it_names_every_role_and_pseudo_role_in_both_languages():
    assert set(roles.PSEUDO_LABELS) == set(PSEUDO_ROLES)
    assert set(roles.LABELS) == set(roles.LABELS_NL) == set(roles.ROLES) | set(PSEUDO_ROLES)
    assert all(roles.LABELS.values()) and all(roles.LABELS_NL.values())


def test_every_role_a_definition_names_is_in_the_catalogue():
    known = set(roles.ROLES) | set(PSEUDO_ROLES) | {"owner", "*"}
    named = set()
    for d in load_definitions():
        named |= set(d.visibility) | set(d.open.roles)
        named |= {s["owner"] for s in d.states if s.get("owner")}
        for step in d.transitions:
            named |= set(step.roles)
    assert named and named <= known, named - known


def test_the_start_page_and_the_demo_have_every_role():
    from web.demo import NAMES, REGIONAL
    from web.views.dashboard import BUILDERS

    assert set(BUILDERS) == set(roles.ROLES)
    assert set(NAMES) == set(roles.INSTITUTION_ROLES)
    assert [r for r, _name in REGIONAL] == list(roles.REGIONAL_ROLES)
