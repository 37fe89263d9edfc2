"""``celery -A bench.noop_worker worker``: the ``bookkeeping`` rows' baseline.

A Celery app configured like Sieve's, whose one task does nothing (see
:func:`bench.bookkeeping_rows.create_noop_app`). Settings come from
``SIEVE_*`` variables (broker and queue), as for Sieve's worker.
"""

from __future__ import annotations

from bench.bookkeeping_rows import create_noop_app
from jobs.settings import get_settings

app = create_noop_app(get_settings())
