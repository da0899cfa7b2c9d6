"""The official ``vastai`` CLI (1.9.1, unmodified) against the simulator.

The CLI exits 0 even after HTTP errors, so every check looks at what it printed
(``--raw`` JSON where it has one) and at what the simulator recorded or held at
that moment. Each CLI start-up costs over a second of CPU, so one module-scoped
scenario runs every command once, independent ones side by side, and the tests
below assert on its transcript.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from vast_mcp.simulator import Simulator

from .simutil import API_KEY, BOOT_SECONDS, client

VASTAI = Path(sys.executable).parent / "vastai"
PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIConformanceTestKey cli@test"
BID = 0.31
TIMEOUT = 60

pytestmark = pytest.mark.skipif(not VASTAI.exists(), reason=f"the vastai CLI is not installed at {VASTAI}")

Proc = subprocess.CompletedProcess[str]


def utc_midnight(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp())


def raw(proc: Proc) -> Any:
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip(), f"no output; stderr: {proc.stderr}"
    return json.loads(proc.stdout)


class Scenario:
    """Runs CLI commands against one simulator and keeps what they printed."""

    def __init__(self, sim: Simulator, home: Path) -> None:
        self.sim = sim
        self.out: dict[str, Proc] = {}
        self.seen: dict[str, Any] = {}  # simulator facts captured mid-scenario
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "VAST_URL": str(sim.url),
            "VAST_API_KEY": API_KEY,
            "VASTAI_NO_UPDATE_CHECK": "1",
            "CI": "1",
            "NO_PROXY": "127.0.0.1,localhost",
            # Anything that is not loopback would go to a dead proxy and fail.
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "COLUMNS": "200",
        }

    def run(self, **commands: list[str]) -> None:
        """Run the named commands concurrently and keep their results under those names."""

        def one(args: list[str]) -> Proc:
            return subprocess.run(
                [str(VASTAI), *args], env=self.env, capture_output=True, text=True, timeout=TIMEOUT, check=False
            )

        with ThreadPoolExecutor(max_workers=len(commands)) as pool:
            futures = {name: pool.submit(one, args) for name, args in commands.items()}
            self.out.update({name: f.result() for name, f in futures.items()})

    def status(self, iid: int) -> tuple[str, str, str]:
        inst = self.sim.state.instances[iid]
        return inst.status(self.sim.clock.now(), self.sim.state.timings), inst.intended, inst.cur_state


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    sim = Simulator(api_key=API_KEY, seed=0, offer_count=300, speed=0.0)
    with sim.serve():
        s = Scenario(sim, tmp_path_factory.mktemp("vastai-home"))
        # First alone: it also fills the CLI's caches (gpu names, account role).
        s.run(search=["search", "offers", "gpu_name=RTX_4090 num_gpus=1 reliability>0.95", "--raw"])
        offers = json.loads(s.out["search"].stdout)
        oid = min(offers, key=lambda o: o["dph_total"])["id"]
        s.seen["offer_id"] = oid
        s.run(
            create=[
                "create", "instance", str(oid), "--image", "pytorch/pytorch:latest", "--disk", "64",
                "--ssh", "--direct", "--label", "x", "--raw",
            ],
            user=["show", "user", "--raw"],
            bid_search=["search", "offers", "-i", f"num_gpus=1 min_bid<{BID} direct_port_count>=1", "--raw"],
        )  # fmt: skip
        bid_oid = next(o["id"] for o in json.loads(s.out["bid_search"].stdout) if o["id"] != oid)
        s.seen["bid_offer_id"] = bid_oid
        # An offer nobody has: the CLI must print the server's error message.
        s.run(
            bid_create=[
                "create",
                "instance",
                str(bid_oid),
                "--image",
                "pytorch/pytorch:latest",
                "--disk",
                "32",
                "--bid_price",
                str(BID),
                "--env",
                "-p 8888:8888 -e FOO=bar",
                "--onstart-cmd",
                "echo hi",
                "--raw",
            ],
            missing=["create", "instance", "999", "--image", "ubuntu:22.04", "--ssh", "--raw"],
            invoices=["show", "invoices-v1", "--invoices", "-s", "2026-07-01", "-e", "2026-11-30", "--raw"],
            invoice_table=["show", "invoices-v1", "--invoices", "-s", "2026-07-01", "-e", "2026-11-30", "--no-color"],
        )
        iid = json.loads(s.out["create"].stdout)["new_contract"]
        s.seen["instance_id"] = iid
        bid_iid = json.loads(s.out["bid_create"].stdout)["new_contract"]
        s.seen["bid_instance_id"] = bid_iid
        sim.clock.advance(BOOT_SECONDS)
        s.run(instances=["show", "instances", "--raw"], instance=["show", "instance", str(iid), "--raw"])
        s.seen["bid_running"] = s.status(bid_iid)
        sim.set_min_bid(bid_iid, 0.35)  # above the bid: Vast stops it
        sim.clock.advance(5)
        s.seen["outbid"] = s.status(bid_iid)
        s.run(
            stop=["stop", "instance", str(iid)],
            add_key=["create", "ssh-key", PUBKEY],
            change_bid=["change", "bid", str(bid_iid), "--price", "0.4"],
        )
        s.seen["after_bid"] = s.status(bid_iid)
        s.seen["new_bid"] = sim.state.instances[bid_iid].dph_base
        sim.clock.advance(5)
        s.seen["after_stop"] = s.status(iid)
        s.run(start=["start", "instance", str(iid)], attach=["attach", "ssh", str(iid), PUBKEY])
        s.seen["after_start"] = s.status(iid)
        sim.clock.advance(10)
        s.seen["started"] = s.status(iid)
        s.run(
            reboot=["reboot", "instance", str(iid)],
            label=["label", "instance", str(iid), "renamed"],
            logs=["logs", str(bid_iid), "--tail", "50"],
        )
        s.seen["after_reboot"] = s.status(iid)
        s.seen["label"] = sim.state.instances[iid].label
        s.seen["instance_keys"] = sim.instance_ssh_keys(iid)
        sim.clock.advance(3600)
        s.run(
            charges=["show", "invoices-v1", "--charges", "-s", "2026-10-25", "-e", "2026-11-01", "--raw"],
            keys=["show", "ssh-keys", "--raw"],
        )
        s.run(destroy=["destroy", "instance", str(iid), "-y", "--raw"])
        yield s


def test_search_sends_the_cli_query_and_gets_matching_offers(cli: Scenario) -> None:
    offers = raw(cli.out["search"])
    assert len(offers) >= 15
    assert all(o["gpu_name"] == "RTX 4090" and o["num_gpus"] == 1 and o["reliability"] > 0.95 for o in offers)
    sent = next(r for r in cli.sim.requests if r.path == "/api/v0/bundles/").body
    assert sent["num_gpus"] == {"eq": "1"} and sent["reliability"] == {"gt": "0.95"}  # the CLI's wire format
    assert sent["allocated_storage"] == 5.0


def test_create_instance(cli: Scenario) -> None:
    answer = raw(cli.out["create"])
    assert answer["success"] is True and answer["new_contract"] == cli.seen["instance_id"]
    body = next(r for r in cli.sim.requests if r.path == f"/api/v0/asks/{cli.seen['offer_id']}/").body
    assert (body["image"], body["disk"], body["label"], body["runtype"]) == (
        "pytorch/pytorch:latest",
        64.0,
        "x",
        "ssh_direc ssh_proxy",
    )
    # An offer that does not exist: the CLI prints the server's message.
    assert json.loads(cli.out["missing"].stderr) == {
        "error": True,
        "status_code": 404,
        "msg": "error 404/3603: no_such_ask Instance type by id 999 is not available.",
    }


def test_show_instances_and_instance(cli: Scenario) -> None:
    iid = cli.seen["instance_id"]
    rows = raw(cli.out["instances"])
    assert [r["id"] for r in rows] == sorted([iid, cli.seen["bid_instance_id"]])
    row = raw(cli.out["instance"])
    assert row["id"] == iid and row["actual_status"] == "running" and row["label"] == "x"
    assert row["ports"]["22/tcp"][0]["HostPort"].isdigit() and row["public_ipaddr"] == "127.0.0.1"
    assert isinstance(row["extra_env"], dict)  # the CLI converted the wire's [[k, v]] pairs


def test_stop_start_reboot_label(cli: Scenario) -> None:
    iid = cli.seen["instance_id"]
    assert f"stopping instance {iid}." in cli.out["stop"].stdout
    assert cli.seen["after_stop"] == ("exited", "stopped", "stopped")
    assert f"starting instance {iid}." in cli.out["start"].stdout
    assert cli.seen["after_start"] == ("loading", "running", "running")
    assert cli.seen["started"] == ("running", "running", "running")
    assert f"Rebooting instance {iid}." in cli.out["reboot"].stdout
    assert cli.seen["after_reboot"] == ("rebooting", "running", "running")
    assert f"label for {iid} set to renamed." in cli.out["label"].stdout
    assert cli.seen["label"] == "renamed"


def test_ssh_keys_and_attach(cli: Scenario) -> None:
    # These two commands print Python reprs, not JSON.
    assert "ssh-key created" in cli.out["add_key"].stdout and "'success': True" in cli.out["add_key"].stdout
    assert "'success': True" in cli.out["attach"].stdout
    assert [k["public_key"] for k in raw(cli.out["keys"])] == [PUBKEY]
    assert cli.seen["instance_keys"] == [PUBKEY]


def test_show_user_strips_the_api_key_the_server_sends(cli: Scenario) -> None:
    user = raw(cli.out["user"])
    assert user["email"] == "sim-user@example.com" and user["username"] == "simuser"
    assert "api_key" not in user
    assert cli.sim.url is not None
    with client(cli.sim.url) as api:
        assert "api_key" in api.get("/api/v0/users/current").json()


def test_invoices_and_charges(cli: Scenario) -> None:
    invoices = raw(cli.out["invoices"])
    assert invoices["success"] is True
    assert [(r["type"], r["amount"]) for r in invoices["results"]] == [("credit", -80.0), ("transfer", 20.0)]
    # The CLI's table flips the credit's wire sign and keeps the transfer's: both show positive.
    table = cli.out["invoice_table"].stdout
    assert "$80.00" in table and "$20.00" in table and "-$" not in table
    charges = raw(cli.out["charges"])
    by_source = {c["source"]: c for c in charges["results"]}
    assert set(by_source) == {f"instance-{cli.seen['instance_id']}", f"instance-{cli.seen['bid_instance_id']}"}
    charge = by_source[f"instance-{cli.seen['instance_id']}"]
    assert charge["amount"] > 0
    assert {i["type"] for i in charge["items"]} == {"gpu", "disk"}
    sent = next(r for r in cli.sim.requests if r.path == "/api/v0/charges/").query
    day = {"gte": utc_midnight(2026, 10, 25), "lte": utc_midnight(2026, 11, 1)}
    assert json.loads(sent["select_filters"]) == {"day": day}


def test_create_a_bid_rental_with_env_ports_and_onstart(cli: Scenario) -> None:
    bid_iid = cli.seen["bid_instance_id"]
    assert raw(cli.out["bid_create"])["success"] is True
    offers = raw(cli.out["bid_search"])
    assert offers and all(o["is_bid"] is True and o["min_bid"] < BID for o in offers)
    search = next(r for r in cli.sim.requests if r.path == "/api/v0/bundles/" and r.body.get("type") == "bid")
    assert search.body["min_bid"] == {"lt": str(BID)}
    body = next(r for r in cli.sim.requests if r.path == f"/api/v0/asks/{cli.seen['bid_offer_id']}/").body
    assert (body["price"], body["disk"], body["onstart"]) == (BID, 32.0, "echo hi")
    assert body["env"] == {"-p 8888:8888": "1", "FOO": "bar"}  # parse_env's form
    inst = cli.sim.state.instances[bid_iid]
    assert inst.is_bid and inst.rates[0].gpu == BID and inst.onstart == "echo hi"
    assert inst.env == {"FOO": "bar"} and list(inst.host_ports) == ["8888/tcp"]
    assert cli.seen["bid_running"] == ("running", "running", "running")


def test_change_bid_resumes_an_outbid_instance(cli: Scenario) -> None:
    bid_iid = cli.seen["bid_instance_id"]
    assert cli.seen["outbid"] == ("exited", "running", "stopped")
    assert "Per gpu bid price changed" in cli.out["change_bid"].stdout
    sent = next(r for r in cli.sim.requests if r.path == f"/api/v0/instances/bid_price/{bid_iid}/")
    assert (sent.method, sent.body, sent.status) == ("PUT", {"client_id": "me", "price": 0.4}, 200)
    assert cli.seen["after_bid"] == ("loading", "running", "running") and cli.seen["new_bid"] == 0.4


def test_logs(cli: Scenario) -> None:
    bid_iid = cli.seen["bid_instance_id"]
    out = cli.out["logs"].stdout
    assert "onstart: echo hi" in out and "Pulling image pytorch/pytorch:latest" in out
    assert "Stopping container" in out  # outbid, then resumed
    sent = next(r for r in cli.sim.requests if r.path == f"/api/v0/instances/request_logs/{bid_iid}/")
    assert sent.body == {"tail": "50"}
    fetched = [r for r in cli.sim.requests if r.path.startswith("/_sim/logs/")]
    assert fetched and all(r.headers.get("authorization") is None for r in fetched)  # result_url: no key


def test_destroy(cli: Scenario) -> None:
    iid = cli.seen["instance_id"]
    assert cli.out["destroy"].returncode == 0 and cli.out["destroy"].stdout.strip() == ""  # prints nothing
    assert iid not in cli.sim.state.instances
    assert cli.sim.count("DELETE", rf"^/api/v0/instances/{iid}/$") == 1
    assert cli.sim.state.offers_by_id[cli.seen["offer_id"]].rentable  # the offer is back on the market


def test_every_cli_request_was_answered(cli: Scenario) -> None:
    failed = [(r.method, r.path, r.status) for r in cli.sim.requests if r.status != 200 and "/asks/999/" not in r.path]
    assert failed == []
    assert all("api_key" not in r.query for r in cli.sim.requests)
