# One image for every process (web, ws, worker, worker-web, beat); the command picks the role.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    DATA_DIR=/app/data

WORKDIR /app

# Build from the lock file only: the image gets exactly the pinned versions, each checked by its hash.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# A fixed uid/gid (10001), so Kubernetes can check runAsNonRoot and give volumes to it (deploy/k8s).
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

# Owned by root: the run-time user reads the code and writes only under /app/data.
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
FROM node:22-slim AS wajs
WORKDIR /wajs
COPY deploy/wa-js/ ./
RUN sh fetch.sh

FROM base AS worker-web
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium fonts-noto-color-emoji \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /app/data/whatsapp_web && chown app:app /app/data/whatsapp_web && chmod 0700 /app/data/whatsapp_web
COPY --from=wajs --chown=app:app /wajs/wppconnect-wa.js /app/deploy/wa-js/wppconnect-wa.js
USER app
CMD ["celery", "-A", "celery_app", "worker", "-Q", "whatsapp_web", "-P", "solo", "-l", "INFO"]

# The default target stays the app image every other process runs.
FROM base AS app
