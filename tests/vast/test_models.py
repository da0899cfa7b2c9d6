"""The models on their own: tolerant parsing, host validation, the new instance properties."""

from __future__ import annotations

import math
from typing import Any

import pytest

from vast_mcp.vast import Charge, Instance, Offer, PriceIncrease
from vast_mcp.vast.models import is_public_host, parse_host, parse_record, parse_records


def offer(offer_id: int, **changes: Any) -> dict[str, Any]:
    return {"id": offer_id, "num_gpus": 1, "gpu_name": "RTX 4090", "dph_base": 0.4, "dlperf": 90.0, **changes}


# -- tolerant parsing ---------------------------------------------------------------------------------


def test_an_unreadable_field_takes_its_default_and_is_named() -> None:
    parsed, notes = parse_records(Offer, [offer(1), offer(2, dlperf=None, num_gpus="two"), offer(3)], "offer")
    assert [o.id for o in parsed] == [1, 2, 3]
    odd = parsed[1]
    assert (odd.dlperf, odd.num_gpus, odd.gpu_name) == (0, 0, "RTX 4090")  # the rest is read
    assert odd.unreadable == ("dlperf", "num_gpus")
    assert parsed[0].unreadable == parsed[2].unreadable == ()
    assert [(n.kind, n.where, n.detail) for n in notes] == [
        ("unreadable", "offer 2", "field dlperf could not be read (null)"),
        ("unreadable", "offer 2", "field num_gpus could not be read (a string)"),
    ]


def test_a_record_without_a_readable_id_is_skipped_not_the_list() -> None:
    parsed, notes = parse_records(Offer, [offer(1), {"id": None, "num_gpus": 1}, "junk", offer(3)], "offer")
    assert [o.id for o in parsed] == [1, 3]
    assert [(n.kind, n.detail) for n in notes] == [
        ("shape", "1 entries were not objects and were skipped"),
        ("skipped", "skipped: id is null"),
    ]


def test_nan_and_infinity_are_unreadable_not_prices() -> None:
    [parsed], _ = parse_records(Offer, [offer(1, dph_base=math.nan, dlperf=math.inf)], "offer")
    assert (parsed.dph_base, parsed.dlperf) == (0, 0)
    assert parsed.unreadable == ("dlperf", "dph_base")


def test_models_are_tolerant_when_validated_directly_too() -> None:
    # Other code validates Vast's raw objects itself (get_instance with raw): same tolerance.
    inst = Instance.model_validate({"id": 5, "ports": ["22/tcp"], "dph_total": None, "ssh_host": " ssh4.vast.ai "})
    assert (inst.ports, inst.dph_total, inst.ssh_host) == ({}, 0, "ssh4.vast.ai")
    assert inst.unreadable == ("dph_total", "ports")


def test_a_wire_unreadable_key_cannot_hide_a_bad_field() -> None:
    inst = Instance.model_validate({"id": 5, "unreadable": 7, "dph_total": "x"})
    assert inst.unreadable == ("dph_total", "unreadable")


def test_strict_parsing_also_reports_absent_fields() -> None:
    _, notes = parse_records(Charge, [{"amount": 1.0}], "charge", strict=True)
    absent = {n.detail for n in notes if n.kind == "absent"}
    assert "field type absent in 1 of 1" in absent and "field amount absent in 1 of 1" not in absent
    assert parse_records(Charge, [{"amount": 1.0}], "charge")[1] == []  # not strict: not a note


def test_a_non_object_record_is_a_shape_note() -> None:
    parsed, [note] = parse_record(Instance, [1, 2], "instance 9")
    assert parsed is None and (note.kind, note.where) == ("shape", "instance 9")


def test_charge_items_are_tolerant_one_by_one() -> None:
    [charge], _ = parse_records(Charge, [{"amount": 1.5, "items": [{"amount": None}, {"amount": 0.5}]}], "charge")
    assert [i.amount for i in charge.items] == [0, 0.5]
    assert charge.items[0].unreadable == ("amount",) and charge.unreadable == ()


# -- hosts --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "host"),
    [
        (" 203.0.113.57\n", "203.0.113.57"),
        ("ssh4.vast.ai", "ssh4.vast.ai"),
        ("SSH4.Vast.AI ", "ssh4.vast.ai"),
        ("2001:db8::1", "2001:db8::1"),
        ("localhost", "localhost"),
    ],
)
def test_hosts_are_trimmed_and_kept_when_valid(text: str, host: str) -> None:
    assert parse_host(text) == host


@pytest.mark.parametrize(
    "text",
    [
        "-oProxyCommand=sh",
        "203.0.113.57; rm -rf /",
        "host name",
        "evil$(id).com",
        "a..b",
        "1.2.3",  # would resolve as the IPv4 address 1.2.0.3
        "fe80::1%eth0",
        "x" * 64 + ".com",
        "<scrubbed>",
        "203.0.113.5:22",
    ],
)
def test_anything_but_an_address_or_a_name_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an IP address or a DNS name"):
        parse_host(text)
    inst = Instance.model_validate({"id": 1, "public_ipaddr": text, "ssh_host": text})
    assert (inst.public_ipaddr, inst.ssh_host) == (None, None)
    assert inst.unreadable == ("public_ipaddr", "ssh_host")


def test_empty_host_is_not_assigned_yet_not_unreadable() -> None:
    inst = Instance.model_validate({"id": 1, "public_ipaddr": "  ", "ssh_host": None})
    assert (inst.public_ipaddr, inst.ssh_host, inst.unreadable) == (None, None, ())


@pytest.mark.parametrize(
    ("host", "public"),
    [
        ("203.0.113.57", True),  # documentation addresses stand in for public ones in recordings
        ("8.8.8.8", True),
        ("ssh4.vast.ai", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("10.1.2.3", False),
        ("172.17.0.1", False),
        ("192.168.1.9", False),
        ("100.64.0.1", False),
        ("169.254.1.1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("localhost", False),
        ("db.localhost", False),
    ],
)
def test_public_hosts(host: str, public: bool) -> None:
    assert is_public_host(host) is public


# -- instance fields and properties -------------------------------------------------------------------


def test_ports_as_a_list_read_as_no_ports_with_a_note() -> None:
    inst = Instance.model_validate({"id": 1, "ports": [{"HostPort": "40311"}], "public_ipaddr": "203.0.113.5"})
    assert inst.ports == {} and inst.direct_ssh is None and inst.mapped_ports == {}
    assert inst.unreadable == ("ports",)


def test_mapped_ports_and_direct_ssh() -> None:
    inst = Instance.model_validate(
        {
            "id": 1,
            "public_ipaddr": "203.0.113.5",
            "ports": {
                "22/tcp": [{"HostIp": "0.0.0.0", "HostPort": "40311"}],
                "8888/tcp": [{"HostIp": "0.0.0.0", "HostPort": 40312}],  # an int means the same
                "9000/tcp": None,
                "9999/tcp": [{"HostIp": "0.0.0.0", "HostPort": "99999"}],  # not a port
            },
        }
    )
    assert inst.mapped_ports == {"22/tcp": "203.0.113.5:40311", "8888/tcp": "203.0.113.5:40312"}
    assert inst.direct_ssh == ("203.0.113.5", 40311)
    v6 = Instance.model_validate({"id": 2, "public_ipaddr": "2001:db8::5", "ports": {"22/tcp": [{"HostPort": "22"}]}})
    assert v6.mapped_ports == {"22/tcp": "[2001:db8::5]:22"}


def test_outbid_is_a_bid_meant_to_run_whose_contract_vast_stopped() -> None:
    base = {"id": 1, "is_bid": True, "intended_status": "running", "cur_state": "stopped", "min_bid": 0.35}
    assert Instance.model_validate(base).outbid
    assert Instance.model_validate(base).min_bid == 0.35
    assert not Instance.model_validate({**base, "is_bid": False}).outbid
    assert not Instance.model_validate({**base, "intended_status": "stopped"}).outbid  # the user stopped it
    assert not Instance.model_validate({**base, "cur_state": "running"}).outbid


def test_new_instance_fields() -> None:
    inst = Instance.model_validate(
        {
            "id": 1,
            "onstart": "echo hi",
            "image_runtype": "ssh_direc ssh_proxy",
            "start_date": 1788630599.5,
            "extra_env": [["-p 8888:8888", "1"], ["HF_HOME", "/w"]],
            "cur_state": "running",
        }
    )
    assert (inst.onstart, inst.image_runtype, inst.start_date, inst.cur_state) == (
        "echo hi",
        "ssh_direc ssh_proxy",
        1788630599.5,
        "running",
    )
    assert inst.extra_env == {"-p 8888:8888": "1", "HF_HOME": "/w"}
    odd = Instance.model_validate({"id": 1, "extra_env": "HF_HOME=/w", "onstart": 5, "is_bid": "maybe"})
    assert (odd.extra_env, odd.onstart, odd.is_bid) == ({}, None, None)
    assert odd.unreadable == ("extra_env", "is_bid", "onstart")


def test_price_increase_per_hour_from_per_second_costs() -> None:
    row = {
        "pending_price_increase_id": 31,
        "contract_id": 7835610,
        "old_gpu_costpersec": 0.0001,
        "new_gpu_costpersec": 0.00015,
        "old_disk_ram_costpersec": 0.00001,
        "new_disk_ram_costpersec": 0.00001,
        "contract_end_date": 1790000000.0,
        "created_at": 1788000000.0,
    }
    increase = PriceIncrease.model_validate(row)
    assert (increase.id, increase.instance_id, increase.created_at) == (31, 7835610, 1788000000.0)
    assert increase.old_per_hour == pytest.approx(0.396)
    assert increase.new_per_hour == pytest.approx(0.576)
    assert increase.model_dump()["new_per_hour"] == pytest.approx(0.576)
    unknown = PriceIncrease.model_validate({**row, "new_gpu_costpersec": None})
    assert unknown.new_per_hour is None and unknown.old_per_hour == pytest.approx(0.396)
