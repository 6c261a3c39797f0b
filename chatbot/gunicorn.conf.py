"""gunicorn settings for the `web` process (plain HTTP over WSGI, gthread workers)."""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

bind = os.environ.get("WEB_BIND", "127.0.0.1:" + os.environ.get("WEB_PORT", "8000"))
worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = 30
keepalive = 5
accesslog = "-" if os.environ.get("WEB_ACCESS_LOG", "0") == "1" else None
if os.environ.get("LOG_FORMAT", "text").lower() == "json":
    # gunicorn's own lines (start, workers booted or lost, the access log) as JSON lines like the app's.
    _json_handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "chatbot.log_context.JsonFormatter"}},
        "handlers": {"console": _json_handler, "error_console": _json_handler},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
        },
    }
# Only these peers (the TLS proxy) may set the request's scheme with X-Forwarded-Proto; Django reads
# the scheme gunicorn decided (settings: no SECURE_PROXY_SSL_HEADER).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Import the app once in the master: workers fork ready (a recycled worker used to spend its first
# requests importing the URLconf, 21-30% of the web CPU in bench/) and share those pages.
preload_app = True
max_requests = 50000  # recycle workers now and then; bounds any slow leak
max_requests_jitter = 5000

# /metrics sums every worker's counters (chatbot/prometheus.py): prometheus_client's multiprocess mode
# reads this variable when it is first imported, so it is set here, in the master, before the app is
# loaded. The folder is emptied once per master start (a reload re-reads this file and keeps it), so
# the counters of an earlier run are not added to this one's.
_OWN_METRICS_DIR = "CHATBOT_METRICS_DIR_READY"
if os.environ.get(_OWN_METRICS_DIR) != str(os.getpid()):
    _chosen = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    _metrics_dir = Path(_chosen or tempfile.mkdtemp(prefix="chatbot-metrics-"))
    if not _chosen:
        os.environ["CHATBOT_METRICS_DIR_MADE"] = "1"  # ours to remove at exit
    _metrics_dir.mkdir(parents=True, exist_ok=True)
    for _old in _metrics_dir.glob("*.db"):  # only prometheus_client's files, whatever else is there
        _old.unlink(missing_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)
    os.environ[_OWN_METRICS_DIR] = str(os.getpid())


def child_exit(server: Any, worker: Any) -> None:
    # A dead worker's live gauges go; its counters stay in the folder, so totals never fall back.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    if os.environ.get("CHATBOT_METRICS_DIR_MADE") == "1":
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
