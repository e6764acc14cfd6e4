"""manage.py worker: one worker process for whichever task backend is configured.

Embedded default (REPLAYWEB_TASKS=database): django-tasks-db's db_worker polls the database.
Teams (REPLAYWEB_REDIS_URL set): an RQ worker on Redis. Either way, run as many as you like, on
this machine or on others that reach the same database, Redis and job-files folder:

    REPLAYWEB_REDIS_URL=redis://queue-host:6379/0 DATABASE_URL=postgres://... \\
    REPLAYWEB_JOB_FILES=/mnt/replayweb-job-files SECRET_KEY=... DEBUG=0 \\
        .venv/bin/python manage.py worker          # once per worker process wanted

Each job is claimed by one worker only; a worker killed mid-import leaves no run (the job is
failed when another worker or the runs page notices it has gone quiet).
"""
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from viewer.jobs import reap, worker_name


class Command(BaseCommand):
    help = "Run a background worker: imports, replay indexes (database backend or Redis, as configured)."

    def add_arguments(self, parser):
        parser.add_argument("--burst", action="store_true", help="work through the queued jobs, then exit")
        parser.add_argument("--queues", default=",".join(settings.TASK_QUEUES),
                            help="comma-separated queues to take jobs from (default: %(default)s)")

    def handle(self, *args, burst, queues, verbosity, **options):
        queue_names = [q.strip() for q in queues.split(",") if q.strip()]
        unknown = sorted(set(queue_names) - set(settings.TASK_QUEUES))
        if unknown:
            raise CommandError(f"no such queue: {', '.join(unknown)} (queues: {', '.join(settings.TASK_QUEUES)})")
        reap()
        backend = settings.REPLAYWEB_TASKS
        if backend == "database":
            call_command("db_worker", queue_name=",".join(queue_names), batch=burst, reload=False, interval=0.5,
                         worker_id=worker_name()[:64], verbosity=verbosity)
        elif backend == "redis":
            call_command("rqworker", *queue_names, job_class="django_tasks_rq.backend.Job", burst=burst,
                         name=worker_name(), verbosity=verbosity)
        else:
            raise CommandError(f"REPLAYWEB_TASKS={backend}: jobs run where they are enqueued; no worker is needed")
