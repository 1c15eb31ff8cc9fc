"""`arq app.workers.settings.WorkerSettings`: the worker, configured from the environment.

Importing this module needs DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

from app.config import get_settings
from app.workers.worker import worker_options

# arq reads a worker's options from the attributes of this class.
WorkerSettings = type("WorkerSettings", (), worker_options(get_settings()))
