#!/bin/sh
# Start `vast-mcp serve --transport http` with its secrets read from files: Docker/Compose secrets
# (/run/secrets/...) or systemd credentials ($CREDENTIALS_DIRECTORY/...). The server reads the
# bearer token from its file itself (--auth-token-file), so it never sits in an environment; this
# script checks it first and fills VAST_API_KEY from its file. Neither secret is ever written into
# an image, a unit file or a compose file.
#
#   VAST_MCP_HTTP_TOKEN_FILE  file with the bearer token clients must send (required, >= 32 chars)
#   VAST_API_KEY_FILE         file with the Vast API key (optional; else the server's other sources)
#   VAST_MCP_HOST / _PORT     bind address and port (default 0.0.0.0:8765, for a container)
#
# Any arguments are passed on to `vast-mcp serve` (e.g. --read-only, --max-burn 5, --allowed-origin).
set -eu

die() {
  echo "vast-mcp-http: $*" >&2
  exit 2
}

read_secret() {
  # The file's content without any whitespace (a trailing newline or CR is the usual accident).
  [ -r "$1" ] || die "cannot read $2 file '$1'"
  value=$(tr -d '[:space:]' <"$1")
  [ -n "$value" ] || die "$2 file '$1' is empty"
  printf '%s' "$value"
}

token_file="${VAST_MCP_HTTP_TOKEN_FILE:-/run/secrets/vast_mcp_http_token}"
token=$(read_secret "$token_file" "bearer token") || exit 2
[ "${#token}" -ge 32 ] || die "the bearer token in '$token_file' is shorter than 32 characters (make one: openssl rand -hex 32)"
unset token

if [ -n "${VAST_API_KEY_FILE:-}" ]; then
  VAST_API_KEY=$(read_secret "$VAST_API_KEY_FILE" "Vast API key") || exit 2
  export VAST_API_KEY
fi

exec vast-mcp serve --transport http \
  --host "${VAST_MCP_HOST:-0.0.0.0}" --port "${VAST_MCP_PORT:-8765}" \
  --auth-token-file "$token_file" "$@"
