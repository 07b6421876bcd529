"""Loading vendors: allow/deny lists, broken vendors, conflicts — and the example vendor."""

import sys
import types
from importlib.metadata import EntryPoint

import pytest

from hami_core import hookimpl
from hami_core.errors import VendorConflict
from hami_core.model import AnnotationKeys, ResourceNames, VendorSpec
from hami_core.plugins import load_vendors


def make_plugin(key: str, count: str, *, opt_in: bool = False) -> types.ModuleType:
    module = types.ModuleType(f"plugin_{key.replace('-', '_')}")
    spec = VendorSpec(
        key=key,
        common_word=key.upper(),
        resources=ResourceNames(count=count),
        annotations=AnnotationKeys(allocated=f"hami.io/{key}-allocated"),
        register_format="capacity",
        mounting="builtin",
        opt_in=opt_in,
    )

    @hookimpl
    def hami_vendor() -> VendorSpec:
        return spec

    module.hami_vendor = hami_vendor  # type: ignore[attr-defined]
    return module


def test_installed_example_vendor_loads_from_its_entry_point() -> None:
    registry = load_vendors(environ={})
    assert "example" in registry.vendors
    loaded = registry.vendors["example"]
    assert loaded.distribution == "hami-example-accelerator"
    assert registry.vendor_for_resource("example.com/xpu") is loaded.spec


def test_disabled_vendor_is_not_loaded() -> None:
    registry = load_vendors(environ={"HAMI_DISABLED_VENDORS": "example"})
    assert "example" not in registry.vendors
    assert "example" in registry.disabled


def test_allow_list_loads_only_the_named_vendors() -> None:
    a, b = make_plugin("alpha", "a.com/gpu"), make_plugin("beta", "b.com/gpu")
    registry = load_vendors(
        environ={"HAMI_VENDORS": "beta"}, entry_points_=[], plugins=[("alpha", a), ("beta", b)]
    )
    assert list(registry.vendors) == ["beta"]


def test_a_vendor_that_fails_to_import_is_reported_and_others_still_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = make_plugin("good", "good.com/gpu")
    monkeypatch.setitem(sys.modules, "good_vendor_plugin", good)
    eps = [
        EntryPoint(name="broken", value="no_such_module_for_hami.plugin", group="hami.vendors"),
        EntryPoint(name="good", value="good_vendor_plugin", group="hami.vendors"),
    ]
    registry = load_vendors(environ={}, entry_points_=eps)
    assert list(registry.vendors) == ["good"]
    [error] = registry.errors
    assert error.plugin == "broken"
    assert "ModuleNotFoundError" in error.error
    assert "no_such_module_for_hami" in error.error


def test_a_vendor_whose_spec_hook_raises_is_reported() -> None:
    module = types.ModuleType("raising")

    @hookimpl
    def hami_vendor() -> VendorSpec:
        raise RuntimeError("firmware table missing")

    module.hami_vendor = hami_vendor  # type: ignore[attr-defined]
    registry = load_vendors(environ={}, entry_points_=[], plugins=[("raising", module)])
    assert registry.vendors == {}
    assert "firmware table missing" in registry.errors[0].error


def test_two_vendors_claiming_one_resource_name_is_an_error_naming_both() -> None:
    a, b = make_plugin("alpha", "shared.com/gpu"), make_plugin("beta", "shared.com/gpu")
    with pytest.raises(VendorConflict) as err:
        load_vendors(environ={}, entry_points_=[], plugins=[("alpha", a), ("beta", b)])
    assert "shared.com/gpu" in str(err.value)
    assert "plugin_alpha" in str(err.value) and "plugin_beta" in str(err.value)


def test_two_vendors_claiming_one_key_is_an_error() -> None:
    a, b = make_plugin("same", "a.com/gpu"), make_plugin("same", "b.com/gpu")
    with pytest.raises(VendorConflict, match="'same'"):
        load_vendors(environ={}, entry_points_=[], plugins=[("one", a), ("two", b)])


def test_each_call_builds_a_fresh_registry() -> None:
    first = load_vendors(environ={}, entry_points_=[], plugins=[("a", make_plugin("a", "a/x"))])
    second = load_vendors(environ={}, entry_points_=[])
    assert "a" in first.vendors and "a" not in second.vendors
    assert first.pm is not second.pm


def test_an_opt_in_vendor_loads_only_when_named() -> None:
    plugin = make_plugin("volcano-ish", "v.com/gpu", opt_in=True)
    default = load_vendors(environ={}, entry_points_=[], plugins=[("volcano", plugin)])
    assert "volcano-ish" not in default.vendors
    named = load_vendors(
        environ={"HAMI_VENDORS": "volcano-ish"}, entry_points_=[], plugins=[("volcano", plugin)]
    )
    assert "volcano-ish" in named.vendors
