# syntax=docker/dockerfile:1
#
# The web console's image (docs/adr/0014-web-console.md): the project's wheel, like the services'
# image, plus the front-end libraries it serves, installed from npm by tools/console-assets'
# package-lock.json (`npm ci`), never fetched at run time. Build from the repository root:
#
#   docker build -f deploy/docker/console.Dockerfile -t advocacy-console .
#
# Its own .dockerignore (console.Dockerfile.dockerignore, beside this file) adds tools/console-assets.

ARG PYTHON_IMAGE=python:3.13-slim-trixie
ARG NODE_IMAGE=node:22-trixie-slim

# -- the front-end libraries, from the lock ------------------------------------------------------
FROM ${NODE_IMAGE} AS assets
WORKDIR /assets
COPY tools/console-assets/package.json tools/console-assets/package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts

# -- build: the project's wheel (as in ../../Dockerfile) -----------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements/runtime.txt requirements/build.txt ./requirements/
RUN pip install --require-hashes -r requirements/runtime.txt \
 && python -m venv /opt/buildenv \
 && /opt/buildenv/bin/pip install --require-hashes -r requirements/build.txt
COPY pyproject.toml ./
COPY libs ./libs
COPY services ./services
RUN /opt/buildenv/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
 && pip install --no-deps /tmp/wheels/advocacy-*.whl \
 && python -m compileall -q /opt/venv/lib

# -- runtime: slim, non-root, only the files the console serves and their licences ---------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 advocacy \
 && useradd --system --uid 10001 --gid advocacy --home-dir /var/lib/advocacy --no-create-home \
      --shell /usr/sbin/nologin advocacy
COPY --from=build /opt/venv /opt/venv
COPY --from=assets /assets/node_modules/htmx.org/dist/htmx.min.js /opt/console-assets/htmx.org/dist/htmx.min.js
COPY --from=assets /assets/node_modules/htmx.org/LICENSE /opt/console-assets/htmx.org/LICENSE
COPY --from=assets /assets/node_modules/chart.js/dist/chart.umd.min.js /opt/console-assets/chart.js/dist/chart.umd.min.js
COPY --from=assets /assets/node_modules/chart.js/LICENSE.md /opt/console-assets/chart.js/LICENSE.md
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CONSOLE_HOST=0.0.0.0 \
    CONSOLE_ASSETS_DIR=/opt/console-assets
WORKDIR /var/lib/advocacy
USER 10001:10001
EXPOSE 8010
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8010/healthz', timeout=3)"]
CMD ["advocacy-console", "serve"]
