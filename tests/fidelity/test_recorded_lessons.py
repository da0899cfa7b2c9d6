"""What the real recordings teach, as behaviour (issue 9), on the recorded bodies themselves.

* a stopped instance is ``actual_status: "exited"`` with ``intended_status``/``cur_state``
  ``"stopped"``: waiting for ``stopped`` succeeds on it, and "fail fast on exited" only
  applies when the instance was meant to run;
* a nonexistent instance is HTTP 200 ``{"instances": null}``: a clean not-found;
* SSH key list items carry ``private_key``: never surfaced;
* ``users/current`` carries ``api_key`` (dropped) and ``created_at`` in milliseconds;
* instances say ``gpu_totalram``, offers ``gpu_total_ram``;
* ``dph_total`` already includes storage.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fidelity.recorded import Replay, client_for, fixture_paths, load, recorded, walk
from vast_mcp.provisioning.readiness import EXITED_GRACE_S, wait_for_state
from vast_mcp.vast import Instance, NotFoundError, Offer, OfferFilters, SshKey, User

pytestmark = pytest.mark.anyio

STOPPED = "instance-200-stopped-jdziat.json"
MISSING = "instance-200-nonexistent_null-jdziat.json"
SSH = "ssh-200-jdziat.json"
USER = "users_current-200-jdziat.json"
SEARCH = "search_asks-200-jdziat.json"
STOPPED_ID = 49983543
CRASH_MSG = "Error response from daemon: container exited with code 1"


def stopped_body(**changes: Any) -> dict[str, Any]:
    """The recorded stopped instance, with some fields changed."""
    body: dict[str, Any] = load(STOPPED).body
    body["instances"].update(changes)
    return body


def meant_to_run(actual_status: str, status_msg: str | None = None) -> dict[str, Any]:
    """The recorded instance as it would read while meant to run (intent/state "running")."""
    return stopped_body(
        actual_status=actual_status,
        intended_status="running",
        cur_state="running",
        next_state="running",
        status_msg=status_msg,
    )


async def wait(replay: Replay, target: str, timeout_s: float = 300.0, poll_s: float = 5.0) -> Any:
    async with client_for(replay) as vast:
        return await wait_for_state(
            vast,
            STOPPED_ID,
            target,  # type: ignore[arg-type]
            timeout_s=timeout_s,
            poll_s=poll_s,
            sleep=replay.sleep,
            clock=replay.clock,
        )


# -- stopped = exited + intended stopped -----------------------------------------------------------


async def test_waiting_for_stopped_succeeds_on_the_recorded_stopped_instance() -> None:
    replay = Replay(recorded(load(STOPPED)))
    outcome = await wait(replay, "stopped")
    assert outcome.reached and outcome.failure is None
    assert outcome.state == "exited" and outcome.polls == 1
    assert outcome.instance is not None and outcome.instance.intended_status == "stopped"


async def test_waiting_for_stopped_polls_through_the_stop_then_succeeds() -> None:
    """Right after a stop request: intent is stopped but the container still runs."""
    replay = Replay(
        recorded(load(STOPPED), stopped_body(actual_status="running", cur_state="running")),
        recorded(load(STOPPED)),
    )
    outcome = await wait(replay, "stopped")
    assert outcome.reached and outcome.polls == 2
    assert replay.waits == [5.0]


async def test_waiting_to_run_a_stopped_instance_is_not_reported_as_a_crash() -> None:
    """Exited because someone stopped it: say it is meant to be stopped, not that it failed."""
    replay = Replay(recorded(load(STOPPED)))
    outcome = await wait(replay, "running")
    assert not outcome.reached and outcome.polls == 1  # fails fast: nobody will start it
    assert outcome.failure == "the instance is meant to be stopped (start it first)"


async def test_exited_while_meant_to_run_fails_fast_with_the_status_message() -> None:
    replay = Replay(
        recorded(load(STOPPED), meant_to_run("loading", "Pulling image ubuntu:22.04")),
        recorded(load(STOPPED), meant_to_run("exited", CRASH_MSG)),
    )
    outcome = await wait(replay, "running")
    assert not outcome.reached and outcome.polls == 2
    assert outcome.failure == f"the instance is exited: <untrusted>{CRASH_MSG}</untrusted>"


async def test_exited_without_progress_gets_the_start_grace_then_fails() -> None:
    """Just after a start, the API may still show the old "exited": not a failure at once."""
    replay = Replay(recorded(load(STOPPED), meant_to_run("exited", CRASH_MSG)))
    outcome = await wait(replay, "running")
    assert not outcome.reached and outcome.failure == f"the instance is exited: <untrusted>{CRASH_MSG}</untrusted>"
    assert outcome.waited_s >= EXITED_GRACE_S
    assert outcome.waited_s < EXITED_GRACE_S + 5.0 + 1e-9  # and no longer than one poll past it


async def test_a_crash_is_not_mistaken_for_a_stop() -> None:
    """Exited while meant to run is not "stopped": waiting for stopped does not report success."""
    replay = Replay(recorded(load(STOPPED), meant_to_run("exited", CRASH_MSG)))
    outcome = await wait(replay, "stopped", timeout_s=20.0)
    assert not outcome.reached


# -- nonexistent = HTTP 200 {"instances": null} ----------------------------------------------------


async def test_nonexistent_instance_is_a_clean_not_found() -> None:
    replay = Replay(recorded(load(MISSING)))
    async with client_for(replay) as vast:
        with pytest.raises(NotFoundError) as caught:
            await vast.instances.get(1)
        with pytest.raises(NotFoundError):
            await vast.instances.get_raw(1)
    assert "list_instances" in str(caught.value)  # says what to do next
    assert len(replay.requests) == 2 and replay.waits == []  # one request per call, no retry


async def test_nonexistent_instance_is_gone_for_waits() -> None:
    replay = Replay(recorded(load(MISSING)))
    gone = await wait(replay, "gone")
    assert gone.reached and gone.state == "gone" and gone.polls == 1
    running = await wait(Replay(recorded(load(MISSING))), "running")
    assert not running.reached and running.failure == "the instance no longer exists"


# -- ssh keys: private_key never surfaced -----------------------------------------------------------

PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nCANARYb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"


async def test_ssh_key_list_never_surfaces_private_key() -> None:
    assert all(item["private_key"] is None for item in load(SSH).body)  # what was recorded
    assert "private_key" not in SshKey.model_fields
    body = load(SSH).body
    for item in body:
        item["private_key"] = PRIVATE  # should it ever be filled in
    replay = Replay(recorded(load(SSH), body))
    async with client_for(replay) as vast:
        keys = await vast.ssh.list_keys()
    assert len(keys) == 2
    for key in keys:
        assert "private_key" not in key.model_dump()
        assert "CANARY" not in key.model_dump_json() + repr(key)


# -- users/current: api_key dropped, created_at in milliseconds ------------------------------------

ACCOUNT_KEY = "CANARY0123456789abcdef0123456789abcdef0123456789abcdef01234567"


async def test_users_current_drops_api_key_and_converts_milliseconds() -> None:
    recorded_body = load(USER).body
    assert "api_key" in recorded_body and recorded_body["created_at"] > 10**12  # ms, as recorded
    assert "api_key" not in User.model_fields
    body = {**recorded_body, "api_key": ACCOUNT_KEY}
    replay = Replay(recorded(load(USER), body))
    async with client_for(replay) as vast:
        user = await vast.account.current_user()
    assert "api_key" not in user.model_dump()
    assert ACCOUNT_KEY not in user.model_dump_json() + repr(user)
    assert user.created_at == datetime.fromtimestamp(recorded_body["created_at"] / 1000, UTC)
    assert user.created_at is not None and user.created_at.year == 2024


def test_user_created_at_in_seconds_stays_seconds() -> None:
    """Other endpoints use float seconds; the millisecond rule must not shrink those."""
    seconds = 1728748803.601
    assert User.model_validate(User.wire_record({"created_at": seconds})).created_at == datetime.fromtimestamp(
        seconds, UTC
    )


# -- gpu_totalram (instances) vs gpu_total_ram (offers) --------------------------------------------


async def test_gpu_total_ram_spelling_differs_between_instances_and_offers() -> None:
    instance_body = load(STOPPED).body["instances"]
    offer_bodies = load(SEARCH).body["offers"]
    assert "gpu_totalram" in instance_body and "gpu_total_ram" not in instance_body
    assert all("gpu_total_ram" in o and "gpu_totalram" not in o for o in offer_bodies)
    inst = Instance.model_validate(instance_body)
    offers = [Offer.model_validate(o) for o in offer_bodies]
    assert inst.gpu_totalram == instance_body["gpu_totalram"] == 5120
    assert [o.gpu_total_ram for o in offers] == [o["gpu_total_ram"] for o in offer_bodies] == [32607, 97887]
    # and through the client, end to end
    async with client_for(Replay(recorded(load(STOPPED)))) as vast:
        assert (await vast.instances.get(STOPPED_ID)).gpu_totalram == 5120
    async with client_for(Replay(recorded(load(SEARCH)))) as vast:
        found = await vast.offers.search(OfferFilters(disk_gb=8))
        assert sorted(o.gpu_total_ram for o in found) == [32607, 97887]


# -- dph_total already includes storage -------------------------------------------------------------


def _priced_objects() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in fixture_paths():
        for obj in walk(load(path).body):
            if {"dph_base", "storage_total_cost", "dph_total"} <= obj.keys():
                found.append((path.name, obj))
    return found


def test_dph_total_already_includes_storage_in_every_recording() -> None:
    priced = _priced_objects()
    assert len(priced) >= 4  # 2 + 1 offers, 1 instance
    for name, obj in priced:
        total = obj["dph_base"] + obj["storage_total_cost"]
        assert math.isclose(total, obj["dph_total"], rel_tol=1e-9), (name, obj.get("id"))
        # storage_total_cost = storage_cost ($/GB/month) * GB / 720
        gb = obj["storage_total_cost"] * 720 / obj["storage_cost"]
        assert gb == pytest.approx(round(gb)), (name, obj.get("id"))


def test_models_do_not_add_storage_twice() -> None:
    for name, obj in _priced_objects():
        if "gpu_totalram" in obj:
            inst = Instance.model_validate(obj)
            assert inst.dph_total == pytest.approx(inst.dph_base + inst.storage_total_cost), name
        else:
            offer = Offer.model_validate(obj)
            gb = round(offer.storage_total_cost * 720 / offer.storage_cost)
            # the price we quote for that disk is Vast's dph_total, not dph_total + storage
            assert offer.price_per_hour(gb) == pytest.approx(offer.dph_total), name
            assert offer.dph_total == pytest.approx(offer.dph_base + offer.storage_total_cost), name


def test_stopped_instance_bills_storage_only() -> None:
    """dph_total stays the running price while stopped; the burn is storage_total_cost."""
    obj = load(STOPPED).body["instances"]
    inst = Instance.model_validate(obj)
    assert inst.actual_status == "exited"
    assert obj["instance"]["totalHour"] == pytest.approx(inst.storage_total_cost)  # Vast's own stopped rate
    assert inst.dph_total > inst.storage_total_cost
