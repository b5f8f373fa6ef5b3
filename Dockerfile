# syntax=docker/dockerfile:1
#
# One image recipe for the five services. SERVICE picks the service the image runs by default
# (its console script `advocacy-<service>`, its port in the health check):
#
#   docker build --build-arg SERVICE=sharing -t advocacy-sharing .
#   docker run advocacy-sharing                      # = advocacy-sharing serve
#   docker run advocacy-sharing advocacy-sharing migrate
#
# Every image holds the whole project (its wheel, without the embedded/dev extras), so any image can
# also run another service's command; Compose and the Kubernetes manifests always spell the command
# out (`advocacy-<service> serve|migrate`).
#
# Reproducible: every package comes from requirements/runtime.txt, pinned with its hashes (`make
# lock`), the same versions the tests run (requirements/dev.txt). The dependency layer is built from
# the lock files alone, so a source change rebuilds only the project's own layer.
#
# Base: Debian 13 (trixie), the current stable release (bookworm is oldstable), with Python 3.13,
# the newest release the project supports and tests (`make test-matrix`).

ARG PYTHON_IMAGE=python:3.13-slim-trixie

# -- build: compilers live here only -------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

# Every pinned dependency ships wheels for linux/amd64 and arm64; the compiler is only a fallback
# for a platform without one, and it never reaches the runtime image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# The dependency layer: the lock files only, so it is cached until a lock changes. The runtime lock
# goes into the image's venv; the build backend (hatchling) into a venv of its own that stays here.
COPY requirements/runtime.txt requirements/build.txt ./requirements/
RUN pip install --require-hashes -r requirements/runtime.txt \
 && python -m venv /opt/buildenv \
 && /opt/buildenv/bin/pip install --require-hashes -r requirements/build.txt

# The source layer: the project's wheel, built without fetching anything, installed without
# dependencies (they are all in the layer above). Not `.[dev]`, not the dev tooling in libs/devtools.
COPY pyproject.toml ./
COPY libs ./libs
COPY services ./services
RUN /opt/buildenv/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
 && pip install --no-deps /tmp/wheels/advocacy-*.whl \
 && python -m compileall -q /opt/venv/lib

# -- runtime: slim, no compiler, non-root --------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG SERVICE=content
RUN case "${SERVICE}" in \
      content|sharing|metrics|gamification|notifications) ;; \
      *) echo "SERVICE must be content, sharing, metrics, gamification or notifications (got '${SERVICE}')" >&2; exit 1 ;; \
    esac

# A fixed numeric uid/gid so Kubernetes `runAsNonRoot` can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 advocacy \
 && useradd --system --uid 10001 --gid advocacy --home-dir /var/lib/advocacy --no-create-home \
      --shell /usr/sbin/nologin advocacy \
 && mkdir -p /var/lib/advocacy/spool /var/lib/advocacy/keys \
 && chown -R advocacy:advocacy /var/lib/advocacy

COPY --from=build /opt/venv /opt/venv
COPY deploy/docker/healthcheck.py /usr/local/bin/advocacy-healthcheck
# The default command: a stable name for the console script SERVICE selected.
RUN chmod 0755 /usr/local/bin/advocacy-healthcheck \
 && ln -s /opt/venv/bin/advocacy-${SERVICE} /usr/local/bin/advocacy-service

# The services listen on loopback by default; in a container they listen on every interface.
# Each settings class reads only its own prefix, so setting all four is harmless.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ADVOCACY_SERVICE=${SERVICE} \
    CONTENT_HOST=0.0.0.0 \
    SHARING_HOST=0.0.0.0 \
    METRICS_HOST=0.0.0.0 \
    GAMIFICATION_HOST=0.0.0.0 \
    NOTIFICATIONS_HOST=0.0.0.0 \
    SHARING_SPOOL_DIR=/var/lib/advocacy/spool

WORKDIR /var/lib/advocacy
USER 10001:10001
EXPOSE 8001 8002 8003 8004

# No curl in the slim image: the check is a few lines of Python (GET /healthz on the service port).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "/usr/local/bin/advocacy-healthcheck"]

# `advocacy-service` is advocacy-${SERVICE}; the migration command is `advocacy-${SERVICE} migrate`.
CMD ["advocacy-service", "serve"]
