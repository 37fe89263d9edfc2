"""``celery -A bench.bookkeeping_worker worker``: Sieve's real task, the model a no-op.

The ``bookkeeping`` rows (``bench/bookkeeping_rows.py``) start this as a
subprocess. Everything it runs is Sieve's worker code (the Celery app of
:func:`worker.celery_app.create_celery_app`, :func:`worker.tasks.register_worker_tasks`,
the pipeline, leases, heartbeat, results and audit events) except the model,
which is :class:`tests.fake_model.FakeModel`: it answers each call with the
smallest valid document in microseconds. Settings come from ``SIEVE_*``
variables, as for ``sieve worker``.
"""

from __future__ import annotations

from jobs.settings import get_settings
from tests.fake_model import FakeModel
from worker import model as model_module
from worker.celery_app import create_celery_app
from worker.tasks import register_worker_tasks

# Each pool child gets "the process model" from worker.model.load_process_model,
# which returns the instance already cached there. Caching the no-op model
# here, in the parent before the fork, hands it to every child: it holds no
# file, thread or connection, so it forks safely, and no GGUF is ever loaded.
model_module._process_model = FakeModel()  # type: ignore[assignment]

settings = get_settings()
app = create_celery_app(settings)
register_worker_tasks(app, settings)
