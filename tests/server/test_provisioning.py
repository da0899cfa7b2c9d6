"""The dialog-first create through a real MCP client against the simulator (issue 5, DESIGN §5).

Each test names the rule it proves; removing the rule makes it fail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from tests.helpers import SIM_KEY, ScriptedUser, data, served_simulator, server_for, ssh_dir_with_key, text_of
from vast_mcp.simulator import Simulator

pytestmark = pytest.mark.anyio
CREATE = r"^/api/v0/asks/\d+/$"
MODES = ["auto", "legacy"]


@pytest.fixture
def sim() -> Iterator[tuple[Simulator, str]]:
    with served_simulator() as served:
        yield served


@asynccontextmanager
async def connect(
    sim: tuple[Simulator, str],
    tmp_path: Path,
    user: ScriptedUser | None = None,
    mode: str = "auto",
    **overrides: Any,
) -> AsyncIterator[Client]:
    server = server_for(sim[1], ssh_dir_with_key(tmp_path), **overrides)
    async with Client(server, mode=mode, elicitation_callback=user) as client:
        yield client


def instances_on(sim: Simulator) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{sim.url}/api/v1/instances/", headers={"Authorization": f"Bearer {SIM_KEY}"}, params={"limit": "25"}
    )
    return list(response.json()["instances"])


async def plan(client: Client, **args: Any) -> dict[str, Any]:
    return data(await client.call_tool("plan_instance", args))


# 1. no valid quote -> refused, nothing rented ------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_create_without_or_with_a_bad_quote_is_refused(
    sim: tuple[Simulator, str], tmp_path: Path, mode: str
) -> None:
    simulator, _ = sim
    async with connect(sim, tmp_path, ScriptedUser(), mode=mode) as client:
        missing = await client.call_tool("create_instance", {})
        assert missing.is_error
        forged = await client.call_tool("create_instance", {"quote_id": "q-forged123-0123456789abcdef0123"})
        assert forged.is_error
        assert "not issued by this server" in text_of(forged)
        quote = (await plan(client))["quote_id"]
        altered = quote[:-1] + ("0" if quote[-1] != "0" else "1")
        tampered = await client.call_tool("create_instance", {"quote_id": altered})
        assert tampered.is_error
        assert "altered" in text_of(tampered)
    assert simulator.count("PUT", CREATE) == 0


async def test_quote_is_single_use(sim: tuple[Simulator, str], tmp_path: Path) -> None:
    simulator, _ = sim
    async with connect(sim, tmp_path, ScriptedUser()) as client:
        quote = (await plan(client))["quote_id"]
        first = data(await client.call_tool("create_instance", {"quote_id": quote, "wait": False}))
        assert first["ok"]
        replay = await client.call_tool("create_instance", {"quote_id": quote, "wait": False})
        assert replay.is_error
        assert "already used" in text_of(replay)
    assert simulator.count("PUT", CREATE) == 1


async def test_expired_quote(sim: tuple[Simulator, str], tmp_path: Path) -> None:
    simulator, _ = sim
    async with connect(sim, tmp_path, ScriptedUser(), quote_ttl=0.0) as client:
        quote = (await plan(client))["quote_id"]
        result = await client.call_tool("create_instance", {"quote_id": quote})
        assert result.is_error
        assert "expired" in text_of(result)
    assert simulator.count("PUT", CREATE) == 0


# 2. elicitation: accept rents and reaches SSH; decline / cancel rent nothing ---------------------


@pytest.mark.parametrize("mode", MODES)
async def test_accept_rents_one_running_instance_that_answers_ssh(
    sim: tuple[Simulator, str], tmp_path: Path, mode: str
) -> None:
    simulator, _ = sim
    user = ScriptedUser()
    progress: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async with connect(sim, tmp_path, user, mode=mode) as client:
        planned = await plan(client)
        result = await client.call_tool(
            "create_instance", {"quote_id": planned["quote_id"]}, progress_callback=on_progress
        )
    created = data(result)
    assert created["ok"], created
    [instance] = created["instances"]
    assert instance["state"] == "running"
    assert instance["ssh_ready"]
    assert instance["ssh_banner"].startswith("<untrusted>SSH-2.0-")
    assert instance["ssh_command"].startswith("ssh -p ")
    # the human saw the quote's terms, in a flat yes/no form
    [asked] = user.asked
    assert f"${planned['total_per_hour']:.3f}/h" in asked.message
    assert set(asked.requested_schema["properties"]) == {"confirm"}
    assert simulator.count("PUT", CREATE) == 1
    assert [i["id"] for i in instances_on(simulator)] == [instance["instance_id"]]
    assert any("running" in p for p in progress)
    # the key was registered on the account and attached to the instance
    assert any(k.startswith("ssh-ed25519 ") for k in simulator.instance_ssh_keys(instance["instance_id"]))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("action", ["decline", "cancel"])
async def test_decline_or_cancel_rents_nothing(
    sim: tuple[Simulator, str], tmp_path: Path, mode: str, action: str
) -> None:
    simulator, _ = sim
    async with connect(sim, tmp_path, ScriptedUser(action=action), mode=mode) as client:
        quote = (await plan(client))["quote_id"]
        result = await client.call_tool("create_instance", {"quote_id": quote})
    assert result.is_error
    assert "nothing was done" in text_of(result)
    assert simulator.count("PUT", CREATE) == 0


async def test_unticked_box_rents_nothing(sim: tuple[Simulator, str], tmp_path: Path) -> None:
    simulator, _ = sim
    async with connect(sim, tmp_path, ScriptedUser(content={"confirm": False})) as client:
        quote = (await plan(client))["quote_id"]
        result = await client.call_tool("create_instance", {"quote_id": quote})
    assert result.is_error
    assert simulator.count("PUT", CREATE) == 0


# 3. --confirm elicit fails closed for clients that cannot ask ------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_confirm_elicit_refuses_clients_without_elicitation(
    sim: tuple[Simulator, str], tmp_path: Path, mode: str
) -> None:
    simulator, _ = sim
    async with connect(sim, tmp_path, None, mode=mode, confirm="elicit") as client:
        quote = (await plan(client))["quote_id"]
        result = await client.call_tool("create_instance", {"quote_id": quote})
    assert result.is_error
    assert "requires a human confirmation" in text_of(result)
    assert simulator.count("PUT", CREATE) == 0


async def test_default_mode_accepts_the_quote_alone_without_elicitation(
    sim: tuple[Simulator, str], tmp_path: Path
) -> None:
    simulator, _ = sim
    async with connect(sim, tmp_path, None) as client:
        quote = (await plan(client))["quote_id"]
        result = data(await client.call_tool("create_instance", {"quote_id": quote, "wait": False}))
    assert result["ok"]
    assert simulator.count("PUT", CREATE) == 1


# 4. offer taken: one retry on the next candidate within the ceiling ------------------------------


async def test_offer_taken_retries_once_on_next_candidate(sim: tuple[Simulator, str], tmp_path: Path) -> None:
    simulator, _ = sim
    async with connect(sim, tmp_path, ScriptedUser()) as client:
        planned = await plan(client)
        simulator.faults.inject("offer_taken")
        result = data(await client.call_tool("create_instance", {"quote_id": planned["quote_id"], "wait": False}))
    assert result["ok"], result
    [instance] = result["instances"]
    assert instance["offer_id"] != planned["chosen"][0]["id"]
    assert instance["price_per_hour"] <= planned["price_ceiling_per_hour"]
    assert simulator.count("PUT", CREATE) == 2
    assert len(instances_on(simulator)) == 1


async def test_offer_taken_twice_fails_cleanly(sim: tuple[Simulator, str], tmp_path: Path) -> None:
    simulator, _ = sim
    async with connect(sim, tmp_path, ScriptedUser()) as client:
        planned = await plan(client)
        simulator.faults.inject("offer_taken", times=2)
        result = data(await client.call_tool("create_instance", {"quote_id": planned["quote_id"]}))
    assert not result["ok"]
    assert "after one retry" in result["summary"]
    assert result["billing_per_hour"] == 0
    assert simulator.count("PUT", CREATE) == 2
    assert instances_on(simulator) == []


async def test_next_candidate_above_ceiling_is_not_rented(sim: tuple[Simulator, str], tmp_path: Path) -> None:
    simulator, _ = sim
    async with connect(sim, tmp_path, ScriptedUser()) as client:
        planned = await plan(client)
        # every offer's price moves 3x before the create re-checks: nothing fits the ceiling
        simulator.faults.inject("price_move", factor=3.0, times=5)
        result = data(await client.call_tool("create_instance", {"quote_id": planned["quote_id"]}))
    assert not result["ok"]
    assert "plan_instance again" in result["summary"]
    assert simulator.count("PUT", CREATE) == 0
    assert instances_on(simulator) == []


# 5. answer lost after the create committed: reconcile by reading, never resend -------------------


async def test_dropped_connection_after_commit_finds_the_one_instance(
    sim: tuple[Simulator, str], tmp_path: Path
) -> None:
    simulator, _ = sim
    async with connect(sim, tmp_path, ScriptedUser()) as client:
        planned = await plan(client)
        simulator.faults.inject("drop_after_commit")
        result = data(await client.call_tool("create_instance", {"quote_id": planned["quote_id"]}))
    assert result["ok"], result
    existing = instances_on(simulator)
    assert len(existing) == 1
    assert [i["instance_id"] for i in result["instances"]] == [existing[0]["id"]]
    assert simulator.count("PUT", CREATE) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_on_create_is_not_resent(sim: tuple[Simulator, str], tmp_path: Path, status: int) -> None:
    simulator, _ = sim
    async with connect(sim, tmp_path, ScriptedUser()) as client:
        planned = await plan(client)
        simulator.faults.inject("server_error", method="PUT", path=CREATE, status=status)
        result = data(await client.call_tool("create_instance", {"quote_id": planned["quote_id"], "wait": False}))
    assert simulator.count("PUT", CREATE) == 1
    # the simulator answered 5xx without creating: the reconcile read finds nothing, and says so
    assert not result["ok"]
    assert "nothing was rented" in result["summary"]
    assert instances_on(simulator) == []


# 6. an instance that exits fails fast, and nothing is left billing unreported ---------------------


async def test_exited_instance_fails_fast_and_is_cleaned_up(sim: tuple[Simulator, str], tmp_path: Path) -> None:
    simulator, _ = sim
    async with connect(sim, tmp_path, ScriptedUser()) as client:
        planned = await plan(client)
        simulator.faults.inject("instance_exit")
        result = data(await client.call_tool("create_instance", {"quote_id": planned["quote_id"]}))
    assert not result["ok"]
    [instance] = result["instances"]
    assert "failed to start" in " ".join(instance["notes"])
    assert "exited" in " ".join(instance["notes"])
    assert instance["billing"] is False
    assert instances_on(simulator) == []  # the dud was destroyed, not left billing storage


# 7. preflight lists active instances ---------------------------------------------------------------


async def test_active_instances_appear_in_the_plan(sim: tuple[Simulator, str], tmp_path: Path) -> None:
    async with connect(sim, tmp_path, ScriptedUser()) as client:
        first = data(await client.call_tool("create_instance", {"quote_id": (await plan(client))["quote_id"]}))
        running_id = first["instances"][0]["instance_id"]
        second = await plan(client)
    assert [i["id"] for i in second["active_instances"]] == [running_id]
    assert any("already running" in w for w in second["warnings"])
    assert any("stop or destroy" in q.lower() for q in second["questions"])


# plan details: defaults marked, label rule, storage-inclusive totals, count > 1 ------------------


async def test_plan_with_no_arguments_uses_and_marks_every_default(sim: tuple[Simulator, str], tmp_path: Path) -> None:
    async with connect(sim, tmp_path) as client:
        planned = await plan(client)
    fields = {f["name"]: f for f in planned["fields"]}
    for name, value in [
        ("gpu_name", "RTX 4090"),
        ("image", "pytorch/pytorch:latest"),
        ("disk_gb", "64"),
        ("count", "1"),
    ]:
        assert fields[name]["value"] == value
        assert fields[name]["source"] == "default"
    assert fields["label"]["value"] == "simuser"  # the account nickname
    assert fields["api_key_source"]["value"].startswith("$VAST_API_KEY")
    assert SIM_KEY not in str(planned)
    [chosen] = planned["chosen"]
    assert chosen["gpu"] == "1x RTX 4090"
    assert planned["total_per_hour"] == pytest.approx(chosen["price_per_hour"], abs=1e-4)
    assert chosen["price_per_hour"] > chosen["gpu_per_hour"]  # storage for 64 GB is priced in
    assert all(f["price_per_hour"] >= chosen["price_per_hour"] for f in planned["fallbacks"])
    assert planned["quote_id"].startswith("q-")


async def test_user_values_are_marked_and_conservative_takes_the_second(
    sim: tuple[Simulator, str], tmp_path: Path
) -> None:
    async with connect(sim, tmp_path) as client:
        cheapest = await plan(client)
        conservative = await plan(client, policy="conservative", image="ubuntu:22.04", disk_gb=100)
    fields = {f["name"]: f for f in conservative["fields"]}
    assert fields["image"] == {"name": "image", "value": "ubuntu:22.04", "source": "user"}
    assert fields["disk_gb"]["source"] == "user"
    assert conservative["chosen"][0]["id"] != cheapest["chosen"][0]["id"]


@pytest.mark.parametrize(
    ("username", "email", "label"), [(None, "ann.lee@example.com", "ann.lee"), (None, None, "vast-user")]
)
async def test_label_falls_back_to_email_then_vast_user(
    tmp_path: Path, username: str | None, email: str | None, label: str
) -> None:
    with served_simulator(username=username, email=email) as served:
        async with connect(served, tmp_path) as client:
            planned = await plan(client)
    assert {f["name"]: f["value"] for f in planned["fields"]}["label"] == label


async def test_count_two_rents_distinct_machines(sim: tuple[Simulator, str], tmp_path: Path) -> None:
    simulator, _ = sim
    async with connect(sim, tmp_path, ScriptedUser()) as client:
        planned = await plan(client, count=2)
        result = data(await client.call_tool("create_instance", {"quote_id": planned["quote_id"]}))
    assert result["ok"], result
    assert len(result["instances"]) == 2
    machines = {i["machine_id"] for i in instances_on(simulator)}
    assert len(machines) == 2
    assert result["billing_per_hour"] == pytest.approx(planned["total_per_hour"], abs=1e-3)


async def test_missing_ssh_key_is_asked_for_and_blocks_the_quote(sim: tuple[Simulator, str], tmp_path: Path) -> None:
    empty = tmp_path / "no-keys"
    empty.mkdir()
    server = server_for(sim[1], empty)
    async with Client(server) as client:
        planned = data(await client.call_tool("plan_instance", {}))
    assert planned["quote_id"] is None
    assert any("SSH public key" in q for q in planned["questions"])


# 8. the prompts name every required field and its default ----------------------------------------


async def test_provision_prompt_names_every_field_and_default(sim: tuple[Simulator, str], tmp_path: Path) -> None:
    async with connect(sim, tmp_path) as client:
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert prompts == {"vast_workflow", "provision_gpu", "teardown"}
        text = (await client.get_prompt("provision_gpu", {})).messages[0].content.text  # type: ignore[union-attr]
        prefilled = (await client.get_prompt("provision_gpu", {"image": "ubuntu:22.04"})).messages[0].content.text  # type: ignore[union-attr]
        workflow = (await client.get_prompt("vast_workflow", {})).messages[0].content.text  # type: ignore[union-attr]
        teardown = (await client.get_prompt("teardown", {"instance_id": "42"})).messages[0].content.text  # type: ignore[union-attr]
    for needle in [
        "set_api_key_source",
        "VAST_API_KEY",
        "keys/.vast_env",
        "keyring",
        "RTX 4090",
        "pytorch/pytorch:latest",
        "disk_gb: 64",
        "count: 1",
        "Not asked: the label",
        "max_hours 24",
        "id_ed25519.pub",
        "id_rsa.pub",
        "approves the defaults",
        "plan_instance",
        "create_instance",
    ]:
        assert needle in text, needle
    assert "ubuntu:22.04 (the user's choice)" in prefilled
    for action in ["offers", "create", "status", "ssh", "destroy", "billing"]:
        assert action in workflow
    assert "instance 42" in teardown
    assert "get_billing" in teardown


async def test_failure_before_any_create_gives_the_quote_back(sim: tuple[Simulator, str], tmp_path: Path) -> None:
    simulator, _ = sim
    async with connect(sim, tmp_path, ScriptedUser()) as client:
        quote = (await plan(client))["quote_id"]
        # the live price re-check fails through every retry: nothing may be rented
        simulator.faults.inject("search_quota")
        failed = await client.call_tool("create_instance", {"quote_id": quote, "wait": False})
        assert failed.is_error
        assert "Nothing was rented" in text_of(failed)
        assert simulator.count("PUT", CREATE) == 0
        again = data(await client.call_tool("create_instance", {"quote_id": quote, "wait": False}))
    assert again["ok"]
    assert simulator.count("PUT", CREATE) == 1
