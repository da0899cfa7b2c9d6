"""The one consent policy (DESIGN §5a), through a real MCP client in both protocol eras.

Every action that spends (create, start), destroys (destroy), grants access (attach a key, a key
registered by create) or changes which account pays (a key file) needs a human yes: a form when
the client can show one (only a JSON true counts), else a confirm token bound to the tool, its
arguments, the text and the active key. Each test is one hole a security review found.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import SIM_KEY, ScriptedUser, data, make_public_key, text_of
from tests.server.rig import Rig, call, confirm_token_of, confirmed

pytestmark = pytest.mark.anyio

STATE = r"^/api/v0/instances/\d+/$"
CREATE = r"^/api/v0/asks/\d+/$"


def changes(rig: Rig) -> list[str]:
    """Every request that could change something on Vast."""
    return [f"{r.method} {r.path}" for r in rig.sim.requests if r.method != "GET" and r.path != "/api/v0/bundles/"]


# -- a human who says anything but a clear yes changes nothing ----------------------------------


GATED = ["start_instance", "destroy_instance", "attach_ssh_key"]


@pytest.mark.parametrize("tool", GATED)
@pytest.mark.parametrize(
    ("action", "content"),
    [
        ("decline", None),
        ("cancel", None),
        ("accept", {"confirm": False}),
        ("accept", {"confirm": "yes"}),
        ("accept", {"confirm": "true"}),
        ("accept", {"confirm": 1}),
    ],
)
async def test_anything_but_a_json_true_changes_nothing(
    rig: Rig, era: str, tool: str, action: str, content: dict[str, Any] | None
) -> None:
    instance_id = rig.rent()
    if tool == "start_instance":
        rig.sim.state.set_state(rig.sim.state.instances[instance_id], "stopped", rig.sim.clock.now())
    rig.sim.reset_requests()
    user = ScriptedUser(action, content)
    async with rig.client(era, user=user) as client:
        result = await call(client, tool, {"instance_id": instance_id})
    assert result.is_error and "nothing was done" in text_of(result).lower()
    assert changes(rig) == [], f"{tool} sent a change without a yes"
    assert len(user.asked) == 1 and f"instance {instance_id}" in user.asked[0].message


async def test_start_is_gated_even_in_elicit_mode_with_a_declining_human(rig: Rig, era: str) -> None:
    instance_id = rig.rent()
    rig.sim.state.set_state(rig.sim.state.instances[instance_id], "stopped", rig.sim.clock.now())
    rig.sim.clock.advance(30)
    rig.sim.reset_requests()
    async with rig.client(era, user=ScriptedUser("decline"), confirm="elicit") as client:
        refused = await call(client, "start_instance", {"instance_id": instance_id})
    assert refused.is_error and rig.sim.count("PUT", STATE) == 0
    assert rig.status(instance_id) == "exited", "GPU billing did not resume"


# -- what the form shows ---------------------------------------------------------------------------


async def test_the_form_is_flat_names_what_matters_and_carries_no_developer_text(rig: Rig, era: str) -> None:
    instance_id = rig.rent(label="wire-test")
    user = ScriptedUser()
    async with rig.client(era, user=user) as client:
        data(await call(client, "destroy_instance", {"instance_id": instance_id}))
    question = user.asked[0]
    schema = question.requested_schema
    assert set(schema["properties"]) == {"confirm"} and schema["properties"]["confirm"]["type"] == "boolean"
    shown = str(schema)
    for developer_words in ("elicitation", "spec", "flat", "primitive", "resolver", "NotAsked"):
        assert developer_words not in shown, f"the form shows developer text: {developer_words}"
    assert "description" not in schema or "form" not in schema["description"]
    text = question.message
    assert f"instance {instance_id}" in text and "RTX 4090" in text and "$" in text
    assert "<untrusted>wire-test</untrusted>" in text, "the host/user-set label is marked as data"
    assert "$VAST_API_KEY" in text and SIM_KEY[-4:] in text and SIM_KEY not in text


async def test_attach_form_says_whose_key_it_is_and_that_it_persists_on_the_account(rig: Rig, era: str) -> None:
    instance_id = rig.rent()
    stranger = make_public_key("ssh-rsa", comment="attacker@evil")
    user = ScriptedUser("decline")
    async with rig.client(era, user=user) as client:
        await call(client, "attach_ssh_key", {"instance_id": instance_id, "public_key": stranger})
        await call(client, "attach_ssh_key", {"instance_id": instance_id})
    from_assistant, from_file = (q.message for q in user.asked)
    assert "supplied by the assistant" in from_assistant and "SHA256:" in from_assistant
    assert "registered on your Vast account" in from_assistant and "future instances" in from_assistant
    assert str(rig.ssh_dir / "id_ed25519.pub") in from_file
    assert "attacker@evil" not in from_assistant, "the key's comment (free text) is not shown as if trusted"
    assert rig.sim.count("POST", r"/ssh/$") == 0 and rig.account_keys() == []


# -- clients without forms: the confirm token --------------------------------------------------------


async def test_without_forms_the_first_call_does_nothing_and_the_token_acts_once(rig: Rig, era: str) -> None:
    instance_id = rig.rent()
    rig.sim.reset_requests()
    async with rig.client(era) as client:
        first = await call(client, "attach_ssh_key", {"instance_id": instance_id})
        assert changes(rig) == []
        token = confirm_token_of(first)
        done = data(await call(client, "attach_ssh_key", {"instance_id": instance_id, "confirm_token": token}))
        replay = await call(client, "attach_ssh_key", {"instance_id": instance_id, "confirm_token": token})
    assert done["attached"] and rig.public_key in rig.sim.instance_ssh_keys(instance_id)
    assert "already used" in text_of(replay) and confirm_token_of(replay) != token, "a replay is a new question"
    assert rig.sim.count("POST", rf"^/api/v0/instances/{instance_id}/ssh/$") == 1
    assert "Show the user exactly this" in text_of(first) and "SHA256:" in text_of(first)


async def test_a_token_is_bound_to_its_tool_and_arguments(rig: Rig, era: str) -> None:
    one, two = rig.rent(), rig.rent(skip=1)
    async with rig.client(era) as client:
        token = confirm_token_of(await call(client, "destroy_instance", {"instance_id": one}))
        other_instance = await call(client, "destroy_instance", {"instance_id": two, "confirm_token": token})
        other_tool = await call(client, "attach_ssh_key", {"instance_id": one, "confirm_token": token})
        forged = await call(client, "destroy_instance", {"instance_id": one, "confirm_token": token[:-2] + "00"})
        still_valid = data(await call(client, "destroy_instance", {"instance_id": one, "confirm_token": token}))
    for refused in (other_instance, other_tool, forged):
        assert refused.is_error and "confirm_token" in text_of(refused)
    assert "different action" in text_of(other_instance) and "altered" in text_of(forged)
    assert rig.instance(two) is not None, "a yes for one instance never destroys another"
    assert still_valid["reached"] and rig.instance(one) is None


async def test_a_token_expires(rig: Rig, era: str) -> None:
    instance_id = rig.rent()
    async with rig.client(era, quote_ttl=0.2) as client:
        token = confirm_token_of(await call(client, "destroy_instance", {"instance_id": instance_id}))
        import anyio

        await anyio.sleep(0.3)
        late = await call(client, "destroy_instance", {"instance_id": instance_id, "confirm_token": token})
    assert "expired" in text_of(late) and rig.instance(instance_id) is not None


async def test_elicit_mode_refuses_tokens_and_quotes(rig: Rig, era: str) -> None:
    instance_id = rig.rent()
    rig.sim.reset_requests()
    async with rig.client(era) as lenient:
        token = confirm_token_of(await call(lenient, "destroy_instance", {"instance_id": instance_id}))
    async with rig.client(era, confirm="elicit") as strict:
        with_token = await call(strict, "destroy_instance", {"instance_id": instance_id, "confirm_token": token})
        plan = data(await call(strict, "plan_instance"))
        with_quote = await call(strict, "create_instance", {"quote_id": plan["quote_id"]})
    assert "elicitation form" in text_of(with_token) and "elicitation form" in text_of(with_quote)
    assert rig.instance(instance_id) is not None and rig.sim.count("PUT", CREATE) == 0


# -- create: the quote is the token, bound to the key it was planned with ---------------------------


async def test_create_form_names_the_ssh_key_and_the_api_key(rig: Rig, era: str) -> None:
    user = ScriptedUser("decline")
    async with rig.client(era, user=user) as client:
        plan = data(await call(client, "plan_instance"))
        refused = await call(client, "create_instance", {"quote_id": plan["quote_id"], "wait": False})
    text = user.asked[0].message
    assert text == plan["confirm_text"], "the form asks exactly what the plan showed"
    assert "SSH key SHA256:" in text and str(rig.ssh_dir / "id_ed25519.pub") in text
    assert "added to your Vast account" in text and "$VAST_API_KEY" in text
    assert re.search(r"<untrusted>[^<]*</untrusted>", text), "host location text is marked as data"
    assert refused.is_error and rig.sim.count("PUT", CREATE) == 0 and rig.sim.count("POST", r"^/api/v0/ssh/$") == 0


async def test_a_quote_planned_on_one_key_never_rents_on_another(
    rig: Rig, era: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_key = "another-account-key-5678"
    async with rig.client(era, user=ScriptedUser()) as client:
        plan = data(await call(client, "plan_instance"))
        rig.sim.api_key = other_key  # the account behind the server's key source changes ...
        monkeypatch.setenv("VAST_API_KEY", other_key)
        switched = data(await call(client, "set_api_key_source", {"source": "env"}))  # ... and the model switches
        refused = await call(client, "create_instance", {"quote_id": plan["quote_id"], "wait": False})
    assert switched["api_key"]["fingerprint"] == "…5678"
    assert refused.is_error and "a yes covers one account" in text_of(refused)
    assert SIM_KEY[-4:] in text_of(refused) and "5678" in text_of(refused)
    assert rig.sim.count("PUT", CREATE) == 0


# -- set_api_key_source(file): no file-system oracle without a human yes --------------------------


async def test_without_forms_key_files_outside_the_documented_directory_all_get_one_answer(
    rig: Rig, era: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    big = tmp_path / "big.env"
    big.write_text("x" * 100_000)
    (tmp_path / "dir.env").mkdir()
    (tmp_path / "link.env").symlink_to("/etc/passwd")
    real = tmp_path / "real.env"
    real.write_text(f"VAST_API_KEY={SIM_KEY}\n")
    paths = [tmp_path / "missing.env", big, tmp_path / "dir.env", tmp_path / "link.env", real, Path("/etc/shadow")]
    async with rig.client(era) as client:
        answers = {text_of(await call(client, "set_api_key_source", {"source": "file", "path": str(p)})) for p in paths}
    assert len(answers) == 1, answers
    (answer,) = answers
    assert "nothing was read" in answer and str(tmp_path / "cfg" / "vast-mcp" / "keys") in answer
    assert "100000" not in answer and "passwd" not in answer and "directory" not in answer.split("keys")[-1]


async def test_without_forms_a_key_file_in_the_documented_directory_needs_a_token(
    rig: Rig, era: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    keys = tmp_path / "cfg" / "vast-mcp" / "keys"
    keys.mkdir(parents=True)
    key_file = keys / "work.env"
    key_file.write_text(f"VAST_API_KEY={SIM_KEY}\n")
    key_file.chmod(0o600)
    async with rig.client(era) as client:
        first = await call(client, "set_api_key_source", {"source": "file", "path": str(key_file)})
        before = data(await call(client, "get_account"))
        result = await confirmed(client, "set_api_key_source", {"source": "file", "path": str(key_file)})
    assert before["api_key"]["source"] == "env", "the first call changed nothing"
    assert "which Vast account pays" in text_of(first) and SIM_KEY[-4:] in text_of(first)
    assert data(result)["api_key"]["source"] == "file"
