"""Gunicorn settings for ReplayWeb (README, "Production"): `gunicorn -c gunicorn.conf.py`.

Every value can be overridden from the environment (GUNICORN_CMD_ARGS, or the variables below).
"""
import multiprocessing
import os

wsgi_app = "replayweb.wsgi:application"
bind = os.environ.get("REPLAYWEB_BIND", "127.0.0.1:8000")

# Requests are mostly waiting on the database or streaming an export: two workers per core,
# each with a few threads, keep pages answering while one worker streams a big export.
workers = int(os.environ.get("REPLAYWEB_WORKERS", multiprocessing.cpu_count() * 2))
threads = int(os.environ.get("REPLAYWEB_THREADS", 4))
worker_class = "gthread"

# A 1M-decision import (about a minute and a half through the upload page) and a 1M-row HTML
# export (a few minutes to stream) must not be cut by the default 30 s worker timeout, which
# answered 500 mid-import and truncated exports under a 200. Long work belongs in jobs (see
# the jobs issue); until then a worker may spend up to this long on one request.
timeout = int(os.environ.get("REPLAYWEB_WORKER_TIMEOUT", 900))
graceful_timeout = 60
keepalive = 5

# Recycle workers now and then, so memory a huge request took is given back to the system.
max_requests = int(os.environ.get("REPLAYWEB_MAX_REQUESTS", 2000))
max_requests_jitter = 200

# The body limits are the app's (REPLAYWEB_MAX_REQUEST_BYTES); these only bound the headers.
limit_request_line = 8190
limit_request_fields = 100

accesslog = os.environ.get("REPLAYWEB_ACCESS_LOG", "-")
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
