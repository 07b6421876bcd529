"""Label and field selectors, as the apiserver parses and matches them."""

from __future__ import annotations

import pytest

from hami_core.k8s import Invalid
from hami_core.k8s.selectors import parse_field_selector, parse_label_selector

LABELS = {"gpu": "true", "zone": "z1", "hami.io/vgpu-node": "n1"}


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        ("", True),
        ("gpu=true", True),
        ("gpu==true", True),
        ("gpu=false", False),
        ("gpu!=false", True),
        ("absent!=x", True),
        ("zone", True),
        ("!zone", False),
        ("!absent", True),
        ("zone in (z1, z2)", True),
        ("zone in (z2)", False),
        ("zone notin (z2)", True),
        ("absent notin (z2)", True),
        ("absent in (z2)", False),
        ("gpu=true, zone in (z1,z3), !absent", True),
        ("hami.io/vgpu-node=n1", True),
        ("empty=", False),
    ],
)
def test_label_selector_matching(selector: str, selected: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is selected


def test_an_empty_value_matches_an_empty_label() -> None:
    assert parse_label_selector("empty=").matches({"empty": ""})


@pytest.mark.parametrize("selector", ["a=b=c", "zone in z1", "(a)", "a in (b", "a=b,,c", "=x"])
def test_bad_label_selectors_are_bad_requests(selector: str) -> None:
    with pytest.raises(Invalid, match="labelSelector") as caught:
        parse_label_selector(selector)
    assert caught.value.status == 400


def test_field_selector_matching() -> None:
    pod = {"metadata": {"name": "p1"}, "spec": {"nodeName": "gpu-1"}, "status": {}}

    assert parse_field_selector("spec.nodeName=gpu-1").matches(pod)
    assert parse_field_selector("spec.nodeName==gpu-1,metadata.name=p1").matches(pod)
    assert not parse_field_selector("spec.nodeName!=gpu-1").matches(pod)
    assert parse_field_selector("status.phase=").matches(pod)
    assert parse_field_selector("spec.unschedulable=false").matches(
        {"spec": {"unschedulable": False}}
    )


def test_field_selectors_name_unsupported_fields() -> None:
    with pytest.raises(Invalid, match=r'field label not supported: "spec\.image"'):
        parse_field_selector("spec.image=x", frozenset({"spec.nodeName"}))
    with pytest.raises(Invalid, match="cannot parse"):
        parse_field_selector("spec.nodeName")
