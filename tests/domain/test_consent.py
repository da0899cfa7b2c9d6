"""Confirm tokens: a yes for one action, on one account, once, for a while (DESIGN §5a)."""

from __future__ import annotations

import pytest

from vast_mcp.consent import ConsentBook, ConsentRequired, Proposal, TokenBook, TokenError, TokenProblem
from vast_mcp.credentials import ApiKey

ALICE = ApiKey("alice-key-000000001111", "env")
BOB = ApiKey("bob-key-00000000002222", "env")


def destroy(instance_id: int = 7, text: str = "Destroy instance 7?") -> Proposal:
    return Proposal("destroy_instance", {"instance_id": instance_id}, text)


def book(now: list[float]) -> ConsentBook:
    return ConsentBook(ttl_s=600, clock=lambda: now[0])


def token_of(required: ConsentRequired) -> str:
    assert required.text in str(required) and required.token in str(required)
    return required.token


def test_a_token_acts_once_for_exactly_what_it_was_given_for() -> None:
    consent = book([0.0])
    token = token_of(consent.ask(destroy(), ALICE))
    consent.redeem(token, destroy(), ALICE)
    with pytest.raises(ConsentRequired, match="already used"):
        consent.redeem(token, destroy(), ALICE)


@pytest.mark.parametrize(
    ("other", "key"),
    [
        (destroy(8, "Destroy instance 7?"), ALICE),  # other arguments
        (Proposal("start_instance", {"instance_id": 7}, "Destroy instance 7?"), ALICE),  # other tool
        (destroy(7, "Destroy instance 7 ($9/h)?"), ALICE),  # what the human saw changed
        (destroy(), BOB),  # another account
        (destroy(), None),
    ],
)
def test_a_token_for_one_thing_authorises_nothing_else(other: Proposal, key: ApiKey | None) -> None:
    consent = book([0.0])
    token = token_of(consent.ask(destroy(), ALICE))
    with pytest.raises(ConsentRequired, match="different action") as refused:
        consent.redeem(token, other, key)
    assert refused.value.token != token, "the refusal asks again with a fresh token"
    consent.redeem(token, destroy(), ALICE)  # the original is untouched


def test_tokens_expire_and_are_pruned() -> None:
    now = [0.0]
    consent = book(now)
    token = token_of(consent.ask(destroy(), ALICE))
    now[0] = 599.0
    consent.redeem(token, destroy(), ALICE)
    late = token_of(consent.ask(destroy(), ALICE))
    now[0] = 1200.0
    with pytest.raises(ConsentRequired, match="expired"):
        consent.redeem(late, destroy(), ALICE)
    consent.ask(destroy(), ALICE)
    assert len(consent) <= 2, "expired tokens are forgotten"


@pytest.mark.parametrize("bad", ["", "ct-", "ct--", "q-abc-def", "ct-abc", "hello"])
def test_not_a_token(bad: str) -> None:
    with pytest.raises(ConsentRequired, match="is not a confirm token"):
        book([0.0]).redeem(bad, destroy(), ALICE)


def test_a_token_from_another_process_is_unknown() -> None:
    token = token_of(book([0.0]).ask(destroy(), ALICE))
    with pytest.raises(ConsentRequired, match="not issued by this server"):
        book([0.0]).redeem(token, destroy(), ALICE)


def test_key_id_depends_on_the_secret_not_the_source() -> None:
    tokens: TokenBook[str] = TokenBook("x")
    same_secret = ApiKey(ALICE.reveal(), "file", "file /k")
    assert tokens.key_id(ALICE) == tokens.key_id(same_secret) != tokens.key_id(BOB)
    assert ALICE.reveal() not in tokens.key_id(ALICE)
    assert TokenBook[str]("x").key_id(ALICE) != tokens.key_id(ALICE), "per process: useless elsewhere"


def test_release_gives_a_used_id_back() -> None:
    tokens: TokenBook[str] = TokenBook("x", clock=lambda: 0.0)
    token = tokens.mint("payload")
    tokens.redeem(token)
    with pytest.raises(TokenError) as used:
        tokens.peek(token)
    assert used.value.problem is TokenProblem.USED
    tokens.release(token)
    assert tokens.redeem(token) == "payload"


def test_every_minted_id_redeems_whatever_its_random_part() -> None:
    tokens: TokenBook[int] = TokenBook("q", clock=lambda: 0.0)
    minted = [(tokens.mint(n), n) for n in range(500)]
    assert all(tokens.redeem(token) == n for token, n in minted)
