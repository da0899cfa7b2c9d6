"""SSH public keys: only real public keys pass, nothing else is read or echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import make_public_key as make_key
from vast_mcp.provisioning.errors import UserFacingError
from vast_mcp.provisioning.sshkeys import parse_public_key, read_public_key_file, resolve_public_key


def test_parses_a_real_shape_and_fingerprints_it() -> None:
    key = parse_public_key(make_key() + "\n")
    assert key.key_type == "ssh-ed25519"
    assert key.fingerprint.startswith("SHA256:")
    assert key.text.endswith("me@laptop")


@pytest.mark.parametrize(
    "text",
    [
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
        "ssh-ed25519 not-base64!!",
        "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
        make_key().replace("ssh-ed25519", "ssh-rsa", 1),  # type in the blob does not match
        "rm -rf / ; ssh-ed25519 AAAA",
        "",
    ],
)
def test_refuses_what_is_not_a_public_key(text: str) -> None:
    with pytest.raises(UserFacingError):
        parse_public_key(text)


def test_private_key_file_is_never_read(tmp_path: Path) -> None:
    private = tmp_path / "id_ed25519"
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nSECRETSECRET\n")
    with pytest.raises(UserFacingError, match=r"\.pub") as caught:
        read_public_key_file(str(private))
    assert "SECRET" not in str(caught.value)


def test_pub_file_with_other_content_is_not_echoed(tmp_path: Path) -> None:
    bogus = tmp_path / "x.pub"
    bogus.write_text("password=hunter2-TOPSECRET\n")
    with pytest.raises(UserFacingError) as caught:
        read_public_key_file(str(bogus))
    assert "TOPSECRET" not in str(caught.value)


@pytest.mark.parametrize("path", ["/etc/../etc/passwd", "../../../../etc/shadow.pub", "/dev/zero.pub", "/proc"])
def test_traversal_and_odd_paths_fail_cleanly(path: str) -> None:
    with pytest.raises(UserFacingError):
        read_public_key_file(path)


def test_default_key_discovery_prefers_ed25519(tmp_path: Path) -> None:
    assert resolve_public_key(None, tmp_path) is None
    (tmp_path / "id_rsa.pub").write_text(make_key("ssh-rsa", "rsa") + "\n")
    found = resolve_public_key(None, tmp_path)
    assert found is not None
    assert found.key_type == "ssh-rsa"
    (tmp_path / "id_ed25519.pub").write_text(make_key() + "\n")
    found = resolve_public_key(None, tmp_path)
    assert found is not None
    assert found.key_type == "ssh-ed25519"
    assert found.path == (tmp_path / "id_ed25519.pub").resolve()


def test_resolve_accepts_text_or_path(tmp_path: Path) -> None:
    path = tmp_path / "k.pub"
    path.write_text(make_key(comment="from-file"))
    assert resolve_public_key(str(path), tmp_path).text.endswith("from-file")  # type: ignore[union-attr]
    assert resolve_public_key(make_key(comment="inline"), tmp_path).text.endswith("inline")  # type: ignore[union-attr]
