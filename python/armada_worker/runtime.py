"""What the stand-ins (``src.*``) and the project loaders share: the connection, the init
context and the job being run. One job runs at a time, so this is plain module state."""

import sys

_connection = None
_context = {}
_agent_message = {}
_job = None


class Job:
    """The job being run and the final status its code recorded, if any."""

    def __init__(self, job_uuid, attempt):
        self.uuid = job_uuid
        self.attempt = attempt
        self.final_status = None
        self.final_error = None


def log(text):
    """The helper's own diagnostics: on stderr, captured by the agent as logs."""
    print(f"[armada_worker] {text}", file=sys.stderr, flush=True)


def install(connection, context, agent_message):
    global _connection, _context, _agent_message
    _connection = connection
    _context = dict(context or {})
    _agent_message = agent_message


def connected():
    """Whether this code runs under an armada agent (the helper connected to it)."""
    return _connection is not None


def context():
    """The init context: run_id, pod_index, proxy_url, fingerprint."""
    _require_connection("the agent context")
    return _context


def agent_message():
    return _agent_message


def call(method, params):
    """One call to the agent; returns once it is stored (or raises CallError)."""
    return _require_connection(method).call(method, params)


def _require_connection(what):
    if _connection is None:
        raise RuntimeError(
            f"{what} needs an armada agent: this code is not running under one "
            "(run the project with `armada workbench DIR`)"
        )
    return _connection


def begin_job(job_uuid, attempt):
    global _job
    _job = Job(job_uuid, attempt)
    return _job


def end_job():
    global _job
    _job = None


def current_job_uuid():
    return _job.uuid if _job is not None else None


def note_final(job_uuid, status, text):
    """Remembers a final status the code recorded for the job being run."""
    if _job is not None and (job_uuid is None or str(job_uuid) == _job.uuid):
        _job.final_status = status
        _job.final_error = text if status == "Failed" else None
