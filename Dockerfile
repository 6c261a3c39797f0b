# One image for every process (web, ws, worker, worker-web, beat); the command picks the role.
#
# Base images pinned by digest (multi-arch indexes), so a rebuild gets the same bytes; to move to a
# newer patch release: `docker buildx imagetools inspect python:3.11-slim-bookworm` (and node:22-slim)
# and replace the digests, or pass --build-arg PYTHON_IMAGE=... for a one-off build.
ARG PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91
ARG NODE_IMAGE=docker.io/library/node:22-slim@sha256:83f487e0a63425e5b4d146fb5e5be574bcbe1b7b843d3ebafdd95eaf7767a7e5

# --- build: the dependencies into a virtualenv, from the lock file only, each checked by its hash. The
# run-time image gets the virtualenv, not pip's downloads, caches or anything a build needed.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --require-hashes -r /tmp/requirements.lock

# --- base: what every process runs.
FROM ${PYTHON_IMAGE} AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    DATA_DIR=/app/data \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

WORKDIR /app

# A fixed uid/gid (10001), so Kubernetes can check runAsNonRoot and give volumes to it (deploy/k8s).
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

# Owned by root, as the virtualenv: the run-time user reads the code and writes only under /app/data.
COPY --from=build /opt/venv /opt/venv
COPY . .
# collectstatic needs settings; throwaway values that exist only during this build step.
RUN DJANGO_SECRET_KEY=build-only DJANGO_SETTINGS_MODULE=chatbot.settings \
    JWT_SECRET=build-only-build-only-build-only-build-only METRICS_TOKEN=build-only-build-only \
    python manage.py collectstatic --noinput \
 && mkdir -p /app/data/whatsapp_web_media && chown app:app /app/data /app/data/whatsapp_web_media \
 && chmod 0700 /app/data/whatsapp_web_media

USER app
EXPOSE 8000 8001
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"
CMD ["gunicorn", "chatbot.wsgi", "--config", "chatbot/gunicorn.conf.py", "--bind", "0.0.0.0:8000"]

# --- worker-web (docs/whatsapp-web.md): the same app plus Debian's Chromium and the pinned wa-js bundle,
# fetched from npm and checked against deploy/wa-js/wppconnect-wa.js.sha256 (the build fails otherwise).
FROM ${NODE_IMAGE} AS wajs
WORKDIR /wajs
COPY deploy/wa-js/ ./
RUN sh fetch.sh

FROM base AS worker-web
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium fonts-noto-color-emoji \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /app/data/whatsapp_web && chown app:app /app/data/whatsapp_web && chmod 0700 /app/data/whatsapp_web
COPY --from=wajs /wajs/wppconnect-wa.js /app/deploy/wa-js/wppconnect-wa.js
USER app
CMD ["celery", "-A", "celery_app", "worker", "-Q", "whatsapp_web", "-P", "solo", "-l", "INFO"]

# The default target stays the app image every other process runs.
FROM base AS app
