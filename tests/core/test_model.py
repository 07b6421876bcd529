"""The data model refuses bad values and says which field was wrong."""

import pytest
from pydantic import ValidationError

from hami_core.model import (
    AnnotationKeys,
    ContainerDevice,
    ContainerRequest,
    Device,
    DeviceInfo,
    DeviceUsage,
    ResourceNames,
    VendorSpec,
)


def spec(**overrides: object) -> VendorSpec:
    fields: dict[str, object] = {
        "key": "acme",
        "common_word": "ACME",
        "resources": ResourceNames(count="acme.com/gpu", memory="acme.com/gpumem"),
        "annotations": AnnotationKeys(
            node_register="hami.io/node-acme-register", allocated="hami.io/acme-allocated"
        ),
        "register_format": "json",
        "mounting": "runtime",
    }
    fields.update(overrides)
    return VendorSpec.model_validate(fields)


def test_negative_memory_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        Device(vendor="acme", uuid="A-0", index=0, model="A1", memory_mib=-1)
    assert "memory_mib" in str(err.value)


def test_empty_uuid_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        Device(vendor="acme", uuid="", index=0, model="A1", memory_mib=1024)
    assert "uuid" in str(err.value)


def test_percent_over_the_card_is_refused() -> None:
    with pytest.raises(ValidationError) as err:
        ContainerRequest(vendor="acme", count=1, memory_percent=150)
    assert "memory_percent" in str(err.value)


def test_vendor_key_must_be_lowercase() -> None:
    with pytest.raises(ValidationError) as err:
        spec(key="ACME")
    assert "key" in str(err.value)


def test_annotation_registered_vendor_needs_its_register_key() -> None:
    with pytest.raises(ValidationError) as err:
        spec(annotations=AnnotationKeys(allocated="hami.io/acme-allocated"))
    assert "node_register" in str(err.value)


def test_spec_lists_every_resource_once() -> None:
    s = spec(advertised=("acme.com/gpu",))
    assert s.resource_names() == ("acme.com/gpu", "acme.com/gpumem")


def test_models_that_travel_are_frozen() -> None:
    s = spec()
    with pytest.raises(ValidationError):
        s.key = "other"


def test_request_memory_is_explicit_mib_else_percent_of_the_card() -> None:
    assert ContainerRequest(vendor="a", count=1, memory_mib=3000).memory_for(16000) == 3000
    assert ContainerRequest(vendor="a", count=1, memory_percent=25).memory_for(16000) == 4000
    assert ContainerRequest(vendor="a", count=1).memory_for(16000) == 0


def test_device_usage_counts_takes_and_give_backs() -> None:
    info = DeviceInfo(id="A-0", count=2, devmem=1000, devcore=100, type="A1", health=True)
    usage = DeviceUsage.from_info("acme", info)
    share = ContainerDevice("A-0", "ACME", 400, 30)
    usage.take(share)
    copy = usage.copy()
    usage.take(share)
    assert (usage.used, usage.usedmem, usage.usedcores) == (2, 800, 60)
    assert (copy.used, copy.usedmem, copy.usedcores) == (1, 400, 30)
    usage.give_back(share)
    usage.give_back(share)
    usage.give_back(share)
    assert (usage.used, usage.usedmem, usage.usedcores) == (0, 0, 0)
