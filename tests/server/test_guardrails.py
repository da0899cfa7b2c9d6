"""Guardrails through a real MCP client (issue 13, DESIGN §2, §5b): spending caps refuse before
anything is sent, deadlines travel in the label, the onstart and the local record, serve reaps at
start-up, set_deadline needs a yes only to extend, clear or change what happens, and the leak report.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from tests.helpers import ScriptedUser, data, text_of
from tests.server.rig import Rig, call, confirm_token_of
from vast_mcp.spending.deadlines import Deadline, DeadlineStore
from vast_mcp.spending.guard import parse_tag

pytestmark = pytest.mark.anyio

CREATE = r"^/api/v0/asks/\d+/$"
STATE = r"^/api/v0/instances/\d+/$"


def store(rig: Rig) -> DeadlineStore:
    return DeadlineStore(rig.home / ".state")


def burn_now(rig: Rig) -> float:
    """The account's $/h as Vast reports it: the full price of what runs, storage of the rest."""
    now = rig.sim.clock.now()
    views = [rig.sim.state.instance_view(i, now) for i in rig.sim.state.instances.values()]
    return sum(v["dph_total"] if v["intended_status"] == "running" else v["storage_total_cost"] for v in views)


def create_bodies(rig: Rig) -> list[dict[str, Any]]:
    return [r.body for r in rig.sim.requests if r.method == "PUT" and r.path.startswith("/api/v0/asks/")]


# -- caps ---------------------------------------------------------------------------------------------


async def test_the_plan_says_when_there_are_no_caps(rig: Rig, era: str) -> None:
    async with rig.client(era) as client:
        plan = data(await call(client, "plan_instance"))
    assert plan["spending"].startswith("no caps set") and plan["quote_id"]
    assert "Spending after it: no caps set" in plan["confirm_text"]


async def test_max_burn_is_exact_at_the_boundary(rig: Rig, era: str) -> None:
    rig.rent()
    async with rig.client(era) as client:
        total = data(await call(client, "plan_instance"))["total_per_hour"]
    limit = burn_now(rig) + total
    async with rig.client(era, max_burn=limit) as client:
        at_cap = data(await call(client, "plan_instance"))
    async with rig.client(era, max_burn=limit - 0.001) as client:
        over = data(await call(client, "plan_instance"))
    assert at_cap["quote_id"] and "of max" in at_cap["spending"]
    assert over["quote_id"] is None, "no quote for a rental over the cap"
    refusal = " ".join(over["warnings"])
    assert "over the max-burn cap" in refusal and "$0.001/h over" in refusal
    assert "To make room" in refusal and "stopping" in refusal, "it says what to stop to make room"


async def test_a_create_that_would_pass_a_cap_by_now_sends_nothing(rig: Rig, era: str) -> None:
    async with rig.client(era) as probe:
        total = data(await call(probe, "plan_instance"))["total_per_hour"]
    async with rig.client(era, user=ScriptedUser(), max_burn=total + 0.05) as client:
        plan = data(await call(client, "plan_instance"))
        rig.rent()  # meanwhile something else starts billing on the account
        rig.sim.reset_requests()
        refused = await call(client, "create_instance", {"quote_id": plan["quote_id"], "wait": False})
    assert refused.is_error and "over the max-burn cap" in text_of(refused) and "Nothing was rented" in text_of(refused)
    assert rig.sim.count("PUT", CREATE) == 0 and rig.sim.count("POST", r"^/api/v0/ssh/$") == 0


async def test_a_daily_budget_counts_the_deadline(rig: Rig, era: str) -> None:
    async with rig.client(era) as probe:
        total = data(await call(probe, "plan_instance"))["total_per_hour"]
    budget = total * 24 - 0.01  # a whole day of it does not fit, two hours do
    async with rig.client(era, daily_budget=budget) as client:
        day = data(await call(client, "plan_instance"))
        short = data(await call(client, "plan_instance", {"max_hours": 2}))
    assert day["quote_id"] is None
    assert "over the daily budget" in " ".join(day["warnings"]) and "shorter deadline" in " ".join(day["warnings"])
    assert short["quote_id"] and f"of ${budget:,.2f} budget" in short["spending"]


async def test_start_is_refused_over_the_cap_and_past_its_deadline(rig: Rig, era: str) -> None:
    instance_id = rig.rent()
    async with rig.client(era, user=ScriptedUser()) as client:
        data(await call(client, "stop_instance", {"instance_id": instance_id}))
    rig.sim.clock.advance(30)
    price = rig.sim.state.instance_view(rig.sim.state.instances[instance_id], rig.sim.clock.now())["dph_total"]
    rig.sim.reset_requests()
    async with rig.client(era, user=ScriptedUser(), max_burn=price - 0.01) as client:
        over = await call(client, "start_instance", {"instance_id": instance_id})
    store(rig).set(Deadline(instance_id=instance_id, at=time.time() - 60, action="stop", account=None))
    async with rig.client(era, user=ScriptedUser()) as client:
        late = await call(client, "start_instance", {"instance_id": instance_id})
    assert over.is_error and "over the max-burn cap" in text_of(over)
    assert late.is_error and "past its deadline" in text_of(late) and "set_deadline" in text_of(late)
    assert rig.sim.count("PUT", STATE) == 0 and rig.status(instance_id) == "exited"


# -- deadlines: the create, the record, the guard, the reaper ------------------------------------------


async def test_a_create_carries_its_deadline_three_ways(rig: Rig, era: str) -> None:
    async with rig.client(era, user=ScriptedUser()) as client:
        plan = data(await call(client, "plan_instance", {"max_hours": 6, "at_deadline": "destroy"}))
        before = time.time()
        made = data(await call(client, "create_instance", {"quote_id": plan["quote_id"], "wait": False}))
        listed = data(await call(client, "list_instances"))
    instance_id = made["instances"][0]["instance_id"]
    assert "DESTROYED (its disk and data deleted) 6 h after it is created" in plan["confirm_text"]
    body = create_bodies(rig)[0]
    tag = parse_tag(body["label"])
    assert tag is not None and tag[1] == "destroy" and before + 6 * 3600 - 5 <= tag[0] <= time.time() + 6 * 3600
    assert body["onstart"].startswith("(\n") and f"D={tag[0]} A=destroy" in body["onstart"]
    assert "CONTAINER_API_KEY" in body["onstart"] and "sim-key" not in body["onstart"], "never the account key"
    recorded = store(rig).get(instance_id)
    assert recorded is not None and (recorded.at, recorded.action) == (tag[0], "destroy")
    assert recorded.account == rig.sim.state.account.user_id
    assert made["instances"][0]["deadline"].startswith("destroy at ")
    view = listed["instances"][0]
    assert view["deadline"].startswith("destroy at ") and "[vast-mcp" not in (view["label"] or "")


async def test_no_deadline_is_said_plainly_and_sends_no_guard(rig: Rig, era: str) -> None:
    async with rig.client(era, user=ScriptedUser(), default_ttl_hours=0) as client:
        plan = data(await call(client, "plan_instance"))
        made = data(await call(client, "create_instance", {"quote_id": plan["quote_id"], "wait": False}))
    assert "No deadline: it runs and bills until someone stops or destroys it." in plan["confirm_text"]
    body = create_bodies(rig)[0]
    assert body["onstart"] is None and parse_tag(body["label"]) is None
    assert store(rig).get(made["instances"][0]["instance_id"]) is None


async def test_serve_reaps_a_passed_deadline_at_start_up(rig: Rig, era: str) -> None:
    instance_id = rig.rent()
    account = rig.sim.state.account.user_id
    store(rig).set(Deadline(instance_id=instance_id, at=time.time() - 1, action="stop", account=account))
    async with rig.client(era) as client:
        for _ in range(200):  # the reaper starts ~1 s after start-up, in the background; the clock moves the stop along
            await anyio.sleep(0.05)
            rig.sim.clock.advance(5)
            listed = data(await call(client, "list_instances"))
            if listed["instances"][0]["intended_status"] == "stopped":
                break
    assert rig.sim.count("PUT", STATE) == 1 and listed["instances"][0]["intended_status"] == "stopped"


# -- set_deadline ----------------------------------------------------------------------------------------


async def test_shortening_needs_no_yes_but_extending_and_clearing_do(rig: Rig, era: str) -> None:
    instance_id = rig.rent()
    user = ScriptedUser()
    async with rig.client(era, user=user) as client:
        first = data(await call(client, "set_deadline", {"instance_id": instance_id, "hours": 5}))
        shorter = data(await call(client, "set_deadline", {"instance_id": instance_id, "hours": 2}))
        asked_so_far = len(user.asked)
        longer = data(await call(client, "set_deadline", {"instance_id": instance_id, "hours": 8}))
        cleared = data(await call(client, "set_deadline", {"instance_id": instance_id}))
    assert asked_so_far == 0, "a first stop deadline and a shorter one need no yes"
    change = f"Change the deadline of Vast instance {instance_id} ("
    assert len(user.asked) == 2 and all(q.message.startswith(change) for q in user.asked)
    assert first["previous"] == "no deadline" and shorter["previous"] == first["deadline"]
    assert longer["deadline"].startswith("stop at ") and cleared["deadline"] == "no deadline"
    assert "no guard inside" in first["enforced_by"], "an instance rented elsewhere: only the reaper enforces it"
    labels = [
        r.body["label"] for r in rig.sim.requests if r.method == "PUT" and r.path.startswith("/api/v0/instances/")
    ]
    assert [parse_tag(label) is not None for label in labels] == [True, True, True, False]
    assert labels[-1] == "wire-test", "clearing removes the tag and keeps the label"
    assert store(rig).get(instance_id) is None


async def test_without_forms_an_extension_waits_for_a_token(rig: Rig, era: str) -> None:
    instance_id = rig.rent()
    store(rig).set(Deadline(instance_id=instance_id, at=time.time() + 3600, action="stop", account=None))
    async with rig.client(era) as client:
        asked = await call(client, "set_deadline", {"instance_id": instance_id, "hours": 48})
        unchanged = store(rig).get(instance_id)
        token = confirm_token_of(asked)
        done = data(
            await call(client, "set_deadline", {"instance_id": instance_id, "hours": 48, "confirm_token": token})
        )
        destroy = await call(client, "set_deadline", {"instance_id": instance_id, "hours": 1, "at_deadline": "destroy"})
    assert unchanged is not None and unchanged.at < time.time() + 2 * 3600, "the first call changed nothing"
    assert "DESTROYED" not in text_of(asked) and "48 h from now" in text_of(asked)
    assert done["deadline"].startswith("stop at ")
    assert destroy.is_error and "DESTROYED: its disk and data are deleted" in text_of(destroy), "a new fate needs a yes"


async def test_label_instance_keeps_the_tag_and_refuses_to_forge_one(rig: Rig, era: str) -> None:
    instance_id = rig.rent()
    async with rig.client(era, user=ScriptedUser()) as client:
        data(await call(client, "set_deadline", {"instance_id": instance_id, "hours": 3}))
        data(await call(client, "label_instance", {"instance_id": instance_id, "label": "renamed"}))
        forged = await call(
            client, "label_instance", {"instance_id": instance_id, "label": "x [vast-mcp stop@9999999999]"}
        )
    label = rig.sim.state.instances[instance_id].label or ""
    assert label.startswith("renamed [vast-mcp stop@"), "the guard still finds its deadline"
    assert forged.is_error and "set_deadline" in text_of(forged) and "9999999999" not in label


async def test_destroy_drops_the_record(rig: Rig, era: str) -> None:
    instance_id = rig.rent()
    async with rig.client(era, user=ScriptedUser()) as client:
        data(await call(client, "set_deadline", {"instance_id": instance_id, "hours": 3}))
        assert store(rig).get(instance_id) is not None
        data(await call(client, "destroy_instance", {"instance_id": instance_id}))
    assert store(rig).get(instance_id) is None


async def test_deadlines_survive_a_server_restart(rig: Rig, era: str) -> None:
    instance_id = rig.rent()
    async with rig.client(era) as first:
        set_once = data(await call(first, "set_deadline", {"instance_id": instance_id, "hours": 4}))
    async with rig.client(era) as second:  # a new server process reads the same state directory
        shorter = data(await call(second, "set_deadline", {"instance_id": instance_id, "hours": 1}))
    assert shorter["previous"] == set_once["deadline"]


# -- the leak report ---------------------------------------------------------------------------------------


async def test_audit_spend_finds_what_leaks(rig: Rig, era: str) -> None:
    stopped, forgotten = rig.rent(), rig.rent(skip=1)
    async with rig.client(era, user=ScriptedUser(), max_burn=50.0) as client:
        data(await call(client, "stop_instance", {"instance_id": stopped}))
        rig.sim.clock.advance(30)
        report = data(await call(client, "audit_spend"))
    kinds = {i["id"]: {f["kind"] for f in i["findings"]} for i in report["instances"]}
    assert "stopped_storage" in kinds[stopped] and {"no_deadline", "not_ours"} <= kinds[forgotten]
    assert report["leak_per_hour"] > 0 and "left under the max burn" in report["budget"]["summary"]
    for audited in report["instances"]:
        assert audited["label"].startswith("<untrusted>"), "labels are host/user text"
        assert all(f["suggestion"] for f in audited["findings"])
