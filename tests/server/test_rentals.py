"""The rentals users ask for, through a real MCP client (issue 14, DESIGN §5b): interruptible bids,
env, ports, onstart, private images, logs; and the live API's queued start and price drift."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import SIM_KEY, ScriptedUser, data, text_of
from tests.server.rig import Rig, call

pytestmark = pytest.mark.anyio

CREATE = r"^/api/v0/asks/\d+/$"
HF = "hf_abcdefghijklmnopqrstuvwxyz0123"


def create_bodies(rig: Rig) -> list[dict[str, Any]]:
    return [r.body for r in rig.sim.requests if r.method == "PUT" and r.path.startswith("/api/v0/asks/")]


async def rent(rig: Rig, era: str, **plan_args: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Plan with ``plan_args``, confirm through the form, create without waiting."""
    async with rig.client(era, user=ScriptedUser()) as client:
        plan = data(await call(client, "plan_instance", plan_args))
        made = data(await call(client, "create_instance", {"quote_id": plan["quote_id"], "wait": False}))
    return plan, made


# -- interruptible ---------------------------------------------------------------------------------


async def test_an_interruptible_plan_bids_and_the_create_sends_the_bid_as_price(rig: Rig, era: str) -> None:
    plan, made = await rent(rig, era, interruptible=True)
    offer = plan["chosen"][0]
    bid = float(next(f["value"] for f in plan["fields"] if f["name"] == "bid_per_hour"))
    assert offer["min_bid"] is not None and bid > offer["min_bid"], "the default bids over the current minimum"
    assert "Interruptible at a bid of" in plan["confirm_text"] and "outbid" in plan["confirm_text"]
    body = create_bodies(rig)[0]
    assert body["price"] == pytest.approx(bid)
    instance = rig.sim.state.instances[made["instances"][0]["instance_id"]]
    assert instance.is_bid


async def test_a_bid_at_the_minimum_warns_and_one_above_on_demand_is_refused(rig: Rig, era: str) -> None:
    async with rig.client(era) as client:
        probe = data(await call(client, "plan_instance", {"interruptible": True}))
        offer = probe["chosen"][0]
        low = data(await call(client, "plan_instance", {"interruptible": True, "bid_per_hour": offer["min_bid"]}))
        high = await call(client, "plan_instance", {"interruptible": True, "bid_per_hour": offer["gpu_per_hour"] + 1})
        orphan = await call(client, "plan_instance", {"bid_per_hour": 0.5})
        zero = await call(client, "plan_instance", {"interruptible": True, "bid_per_hour": 0})
    assert any("at or below" in w and "minimum bid" in w for w in low["warnings"])
    assert high.is_error and "above offer" in text_of(high) and "on-demand" in text_of(high)
    assert orphan.is_error and "interruptible=true" in text_of(orphan)
    assert zero.is_error and "bid_per_hour" in text_of(zero)
    assert rig.sim.count("PUT", CREATE) == 0


async def test_outbid_is_reported_everywhere_and_a_raised_bid_resumes_with_a_yes(rig: Rig, era: str) -> None:
    _, made = await rent(rig, era, interruptible=True)
    instance_id = made["instances"][0]["instance_id"]
    rig.sim.clock.advance(60)
    rig.sim.set_min_bid(instance_id, 5.0)
    rig.sim.clock.advance(10)
    user = ScriptedUser()
    async with rig.client(era, user=user) as client:
        listed = data(await call(client, "list_instances"))
        waited = data(await call(client, "wait_for_instance", {"instance_id": instance_id, "timeout_seconds": 5}))
        report = data(await call(client, "audit_spend"))
        rig.sim.reset_requests()
        raised = await call(client, "start_instance", {"instance_id": instance_id, "bid_per_hour": 6.0})
    alert = listed["instances"][0]["alert"]
    assert alert.startswith("outbid") and "$5.000/h" in alert and "never re-bid automatically" in alert
    assert not waited["reached"] and "outbid" in waited["detail"]
    kinds = {f["kind"] for f in report["instances"][0]["findings"]}
    assert "outbid" in kinds
    assert "Its bid is raised to $6.000/h first" in user.asked[-1].message
    bids = [r.body for r in rig.sim.requests if r.path == f"/api/v0/instances/bid_price/{instance_id}/"]
    assert bids == [{"client_id": "me", "price": 6.0}], "exactly as the official CLI sends it"
    assert not raised.is_error, text_of(raised)


# -- env, ports, onstart ---------------------------------------------------------------------------


async def test_env_and_ports_travel_as_the_cli_sends_them_and_values_are_never_shown(rig: Rig, era: str) -> None:
    plan, made = await rent(rig, era, env={"HF_TOKEN": HF, "MODE": "train"}, ports=[8888, 6006])
    body = create_bodies(rig)[0]
    assert body["env"]["-p 8888:8888"] == "1" and body["env"]["-p 6006:6006"] == "1"
    assert body["env"]["HF_TOKEN"] == HF and body["env"]["MODE"] == "train" and "VAST_MCP_REQUEST" in body["env"]
    assert "Env HF_TOKEN, MODE (values not shown)" in plan["confirm_text"]
    assert "Ports open to the internet: 6006, 8888" in plan["confirm_text"]
    assert HF not in str(plan) + str(made)
    instance_id = made["instances"][0]["instance_id"]
    rig.sim.clock.advance(60)
    async with rig.client(era) as client:
        shown = data(await call(client, "get_instance", {"instance_id": instance_id, "raw": True}))
    ports = shown["instance"]["ports"]
    assert set(ports) == {"8888/tcp", "6006/tcp"} and all(p.startswith("127.0.0.1:") for p in ports.values())
    assert HF not in str(shown)


async def test_the_onstart_runs_after_the_guard(rig: Rig, era: str) -> None:
    await rent(rig, era, onstart="echo hello\nsleep 1")
    body = create_bodies(rig)[0]
    assert body["onstart"].index("vast-mcp guard") < body["onstart"].index("echo hello\nsleep 1")


async def test_the_log_tail_hides_secrets_the_container_prints(rig: Rig, era: str) -> None:
    # No deadline: the simulator logs the onstart's first line, which is then the user's own.
    _, made = await rent(rig, era, env={"HF_TOKEN": HF}, onstart="echo token $HF_TOKEN", max_hours=0)
    instance_id = made["instances"][0]["instance_id"]
    rig.sim.clock.advance(60)
    async with rig.client(era) as client:
        logs = data(await call(client, "get_instance_logs", {"instance_id": instance_id, "tail": 50}))
    assert logs["lines"] > 0 and logs["log"].startswith("<untrusted>") and "onstart: echo token ***" in logs["log"]
    assert HF not in logs["log"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ({"onstart": "x" * 4001}, "onstart"),
        ({"onstart": "x" * 3990}, "Vast's limit of 4,048"),
        ({"ports": [70000]}, "ports[0]"),
        ({"ports": [22]}, "Port 22"),
        ({"env": {"1BAD": "x"}}, "env"),
        ({"env": {"OK": "line\nbreak"}}, "control character"),
        ({"env": {"VAST_MCP_REQUEST": "x"}}, "reserved"),
        ({"env": {"CONTAINER_API_KEY": "x"}}, "reserved"),
        ({"image": "ghcr.io/me/private:1", "private_image": True}, "no login for ghcr.io"),
    ],
)
async def test_bad_rental_input_is_a_plain_error_and_sends_nothing(
    rig: Rig, era: str, args: dict[str, Any], words: str
) -> None:
    async with rig.client(era) as client:
        result = await call(client, "plan_instance", args)
    assert result.is_error and words in text_of(result), text_of(result)
    assert "pydantic" not in text_of(result)
    assert rig.sim.requests == [], "checked before anything reached Vast"


async def test_a_private_image_logs_in_with_the_local_login_and_never_shows_the_token(
    rig: Rig, era: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "ghp_registrytoken0123456789abcdefghij"
    monkeypatch.setenv("VAST_MCP_REGISTRY_AUTH", f"ghcr.io me:{token}")
    plan, made = await rent(rig, era, image="ghcr.io/me/private:1", private_image=True)
    assert create_bodies(rig)[0]["image_login"] == f"-u me -p {token} ghcr.io"
    assert "logs in to ghcr.io as me" in plan["confirm_text"]
    assert token not in str(plan) + str(made)
    async with rig.client(era) as client:
        recent = await client.read_resource("vast://requests/recent")
    assert token not in str(recent) and SIM_KEY not in str(recent)


# -- what the live API does after a create or a start ----------------------------------------------


async def test_a_price_above_the_confirmed_ceiling_is_said_first(rig: Rig, era: str) -> None:
    rig.sim.faults.inject("price_move", method="PUT", path=CREATE, factor=2.0)
    _, made = await rent(rig, era)
    notes = made["instances"][0]["notes"]
    assert notes[0].startswith("PRICE ABOVE WHAT WAS CONFIRMED") and "destroy_instance" in notes[0]


async def test_a_start_whose_gpus_were_relet_is_reported_as_queued(rig: Rig, era: str) -> None:
    instance_id = rig.rent()
    async with rig.client(era, user=ScriptedUser()) as client:
        data(await call(client, "stop_instance", {"instance_id": instance_id}))
        rig.sim.clock.advance(30)
        rig.sim.relet(instance_id)
        started = data(await call(client, "start_instance", {"instance_id": instance_id}))
        listed = data(await call(client, "list_instances"))
    assert started["state"] == "queued" and not started["reached"] and "stop_instance" in started["detail"]
    assert listed["instances"][0]["alert"].startswith("start queued")


async def test_a_failed_start_brings_its_log_tail(rig: Rig, era: str) -> None:
    rig.sim.faults.inject("oci_failure")
    async with rig.client(era, user=ScriptedUser()) as client:
        plan = data(await call(client, "plan_instance"))
        made = data(await call(client, "create_instance", {"quote_id": plan["quote_id"]}))
    dud = made["instances"][0]
    assert not made["ok"] and dud["state"] == "destroyed"
    assert dud["log_tail"] is not None and dud["log_tail"].startswith("<untrusted>")
