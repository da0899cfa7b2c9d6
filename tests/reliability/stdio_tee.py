"""``python stdio_tee.py WIRE_OUT WIRE_IN STDERR -- CMD...``: run CMD as an MCP stdio server and copy
every byte it writes (stdout: the JSON-RPC wire; stderr: its logs), and every byte it is sent, to
files while passing them through unchanged. The leak tests scan those files.

It forwards stdin EOF to the child and exits with the child's code; the test starts it in its own
session so the whole group can be stopped by id.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import BinaryIO


def pump(src: BinaryIO, dst: BinaryIO, copy: BinaryIO, close_dst: bool = False) -> None:
    try:
        while True:
            chunk = src.read1(65536) if hasattr(src, "read1") else src.read(65536)
            if not chunk:
                break
            copy.write(chunk)
            copy.flush()
            try:
                dst.write(chunk)
                dst.flush()
            except (BrokenPipeError, ValueError):
                break
    finally:
        if close_dst:
            try:
                dst.close()
            except OSError:
                pass


def main(argv: list[str]) -> int:
    wire_out, wire_in, stderr_path, sep, *cmd = argv
    if sep != "--" or not cmd:
        print("usage: stdio_tee.py WIRE_OUT WIRE_IN STDERR -- CMD...", file=sys.stderr)
        return 2
    with open(wire_out, "wb") as out_copy, open(wire_in, "wb") as in_copy, open(stderr_path, "wb") as err_copy:
        child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert child.stdin is not None and child.stdout is not None and child.stderr is not None
        threads = [
            threading.Thread(target=pump, args=(sys.stdin.buffer, child.stdin, in_copy, True), daemon=True),
            threading.Thread(target=pump, args=(child.stdout, sys.stdout.buffer, out_copy)),
            threading.Thread(target=pump, args=(child.stderr, sys.stderr.buffer, err_copy)),
        ]
        for thread in threads:
            thread.start()
        code = child.wait()
        for thread in threads[1:]:
            thread.join(timeout=5)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
