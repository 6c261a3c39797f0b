"""gunicorn settings for the `web` process (plain HTTP over WSGI, gthread workers)."""

import os

bind = os.environ.get("WEB_BIND", "127.0.0.1:" + os.environ.get("WEB_PORT", "8000"))
worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = 30
keepalive = 5
accesslog = "-" if os.environ.get("WEB_ACCESS_LOG", "0") == "1" else None
# Only these peers (the TLS proxy) may set the request's scheme with X-Forwarded-Proto; Django reads
# the scheme gunicorn decided (settings: no SECURE_PROXY_SSL_HEADER).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Import the app once in the master: workers fork ready (a recycled worker used to spend its first
# requests importing the URLconf, 21-30% of the web CPU in bench/) and share those pages.
preload_app = True
max_requests = 50000  # recycle workers now and then; bounds any slow leak
max_requests_jitter = 5000
