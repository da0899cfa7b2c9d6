# syntax=docker/dockerfile:1
# vast-mcp over streamable HTTP for a small team: non-root, secrets from files, state on a volume.
#
#   docker build -t vast-mcp:0.1.0 .
#   docker compose -f deploy/compose.yaml up -d      # the recipe that wires secrets and the volume
#
# TLS is not terminated here: put a reverse proxy in front (README "Running it for a team").
# The same Python minor version the test suite runs on.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# uv, pinned, from PyPI: builds the wheel and exports the locked requirements with their hashes.
RUN pip install --no-cache-dir uv==0.13.9
COPY pyproject.toml uv.lock README.md skill.md ./
COPY references ./references
COPY src ./src
RUN uv export --frozen --no-dev --no-emit-project --format requirements-txt -o /dist/requirements.txt \
    && uv build --wheel -o /dist

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/vast-mcp/bin:$PATH \
    VAST_MCP_STATE_DIR=/var/lib/vast-mcp
# Exactly the locked dependencies (hash-checked), then the project's wheel without resolving again.
COPY --from=build /dist /tmp/dist
RUN python -m venv /opt/vast-mcp \
    && /opt/vast-mcp/bin/pip install --no-cache-dir --require-hashes -r /tmp/dist/requirements.txt \
    && /opt/vast-mcp/bin/pip install --no-cache-dir --no-deps /tmp/dist/vast_mcp-*.whl \
    && rm -rf /tmp/dist \
    && groupadd --system --gid 10001 vast \
    && useradd --system --uid 10001 --gid vast --home-dir /home/vast --create-home --shell /usr/sbin/nologin vast \
    && install -d -o vast -g vast -m 0700 /var/lib/vast-mcp
# Reads the bearer token from /run/secrets/vast_mcp_http_token (VAST_MCP_HTTP_TOKEN_FILE) and the
# Vast key from VAST_API_KEY_FILE, then runs `vast-mcp serve --transport http --host 0.0.0.0`.
COPY --chmod=0755 deploy/serve-http.sh /usr/local/bin/vast-mcp-http
# Deadlines and other server state survive a new container.
VOLUME ["/var/lib/vast-mcp"]
USER 10001:10001
WORKDIR /home/vast
EXPOSE 8765
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import socket; socket.create_connection(('127.0.0.1', 8765), 3).close()"]
ENTRYPOINT ["/usr/local/bin/vast-mcp-http"]
CMD []
