# syntax=docker/dockerfile:1
# TaskFlow's one image: every process (tool server, chat, worker, migrations) is `taskflow <command>`.
#   docker build -t taskflow .
#   docker run --rm taskflow --help
# The Python dependencies come from pyproject.toml alone, so there is no second list to drift from it.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a virtual environment holding the dependencies and the project --------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/taskflow
ENV PATH="/opt/taskflow/bin:${PATH}"
WORKDIR /src

# Dependencies in their own layer, keyed on pyproject.toml only: editing the code does not reinstall them.
# The list is read from [project].dependencies at build time, not copied into a second file by hand.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps))" \
 && pip install -r /tmp/requirements.txt

# The project itself (a regular, non-editable install). --no-deps: everything it needs is installed above, and
# `pip check` fails the build if pyproject's requirements and the installed set ever disagree.
COPY README.md ./
COPY mcp_server ./mcp_server
COPY agent ./agent
COPY events ./events
COPY chat_ui ./chat_ui
COPY taskflow ./taskflow
RUN pip install --no-deps . && pip check

# --- runtime: the same Python, the virtual environment, nothing used to build it ---------------------
FROM ${PYTHON_IMAGE} AS runtime
# A fixed numeric uid, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
RUN groupadd --system --gid 10001 taskflow \
 && useradd --system --uid 10001 --gid taskflow --home-dir /home/taskflow --create-home --shell /usr/sbin/nologin taskflow
COPY --from=build /opt/taskflow /opt/taskflow
ENV PATH="/opt/taskflow/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
# The chat keeps Chainlit's working files under ~/.local/share/taskflow (mount a volume there to keep them).
WORKDIR /home/taskflow

# 8000: `serve mcp` (MCP at /mcp, health at /healthz, Dapr event routes); the chat is given its own port.
EXPOSE 8000
# curl is not in the slim image; Python is. Checks the default command's /healthz, which answers 503 when the
# database is unreachable; services running another command (chat, migrations) override or disable this.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["taskflow"]
CMD ["serve", "mcp", "--host", "0.0.0.0", "--port", "8000"]
