"""Armada's worker helper for Python projects.

An armada agent starts ``python3 -m armada_worker`` in the project's folder with
``ARMADA_WORKER_SOCKET`` set. The helper speaks the worker protocol (docs/worker-protocol.md)
on that socket and runs a project written the original way:

* ``ctx_agent_context.py`` with ``class AgentContext`` (entered once, exited at shutdown),
* ``ctx_job_context.py`` with ``class JobContext`` (one per job),
* ``ctx_script.py`` with ``async def ctx_script(job_ctx, agent_ctx)``,

or, when there is no ``ctx_script.py``, the original dashboard's single bundled ``code``
string from the agent message (a Celery-style module; see ``bundled.py``).
"""

import platform

__version__ = "0.1.0"
PROTOCOL_VERSION = 1
WORKER_NAME = f"armada_worker/{__version__} (python {platform.python_version()})"
