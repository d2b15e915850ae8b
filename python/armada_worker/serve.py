"""The helper's life: connect, handshake, init the project once, run jobs one at a time on
one asyncio event loop, tear down at shutdown."""

import asyncio
import os
import sys
import threading
import traceback

from armada_worker import PROTOCOL_VERSION, WORKER_NAME, runtime, standins
from armada_worker.calling import describe
from armada_worker.connection import Connection, ProtocolError

# Once the helper decides to exit, user threads that never end must not keep it alive.
EXIT_WATCHDOG_SECONDS = 5
# How long tearing down may take when the agent has gone away.
TEARDOWN_SECONDS = 10


def main():
    path = os.environ.get("ARMADA_WORKER_SOCKET")
    if not path:
        runtime.log(
            "ARMADA_WORKER_SOCKET is not set: this helper is started by an armada agent "
            "(`armada workbench DIR` runs a project locally)"
        )
        sys.exit(2)
    connection = Connection(path)
    try:
        connection.send({"type": "hello", "protocol": PROTOCOL_VERSION, "worker": WORKER_NAME})
        hello = connection.read_message()
        if hello is None:
            runtime.log("the agent closed the connection before its hello")
            _exit(1)
        if hello.get("type") != "hello":
            runtime.log(f"expected the agent's hello, got a {hello.get('type')!r} message")
            _exit(2)
        if hello.get("protocol") != PROTOCOL_VERSION:
            runtime.log(
                f"worker protocol mismatch: the agent ({hello.get('agent', 'unnamed agent')}) speaks protocol "
                f"{hello.get('protocol')}, this worker ({WORKER_NAME}) speaks protocol {PROTOCOL_VERSION}; "
                "use the armada_worker helper shipped with that agent"
            )
            _exit(2)
        init = connection.read_message()
    except ProtocolError as exc:
        runtime.log(str(exc))
        _exit(2)
    if init is None or init.get("type") != "init":
        runtime.log("expected init after the handshake")
        _exit(2)
    _exit(asyncio.run(serve(connection, init)))


def _exit(code):
    sys.stdout.flush()
    sys.stderr.flush()
    watchdog = threading.Timer(EXIT_WATCHDOG_SECONDS, os._exit, [code])
    watchdog.daemon = True
    watchdog.start()
    sys.exit(code)


def _print_failure(what, exc):
    runtime.log(f"{what}: {describe(exc)}")
    traceback.print_exception(type(exc), exc, exc.__traceback__, limit=-12, file=sys.stderr)
    sys.stderr.flush()


def load_project(workdir, agent_message):
    from armada_worker.project import CtxProject, is_ctx_project

    if is_ctx_project(workdir):
        return CtxProject(workdir)
    code = agent_message.get("code") if isinstance(agent_message, dict) else None
    if isinstance(code, str) and code.strip():
        from armada_worker.bundled import BundledProject

        return BundledProject(code)
    raise RuntimeError(
        f"nothing to run: no ctx_script.py in {workdir} and no `code` in the agent message "
        "(see docs/worker-protocol.md, 'The Python helper')"
    )


async def serve(connection, init):
    loop = asyncio.get_running_loop()
    inbox = asyncio.Queue()
    lost = asyncio.Event()

    def deliver(message):
        def put():
            if message is None:
                lost.set()
            else:
                inbox.put_nowait(message)

        try:
            loop.call_soon_threadsafe(put)
        except RuntimeError:
            pass  # the loop has closed: the helper is exiting anyway

    connection.start_reader(deliver)
    agent_message = init.get("agent_message") or {}
    runtime.install(connection, init.get("context"), agent_message)
    workdir = os.getcwd()

    project = None
    try:
        standins.install(workdir)
        project = load_project(workdir, agent_message)
        await project.start()
    except Exception as exc:
        _print_failure("init failed", exc)
        connection.send({"type": "init_failed", "error": describe(exc)})
        if project is not None:
            await _teardown(project)
        return 1
    connection.send({"type": "ready"})

    connection_lost = asyncio.ensure_future(lost.wait())
    while True:
        next_message = asyncio.ensure_future(inbox.get())
        await asyncio.wait({next_message, connection_lost}, return_when=asyncio.FIRST_COMPLETED)
        if not next_message.done():
            next_message.cancel()
            runtime.log("the agent closed the connection; tearing down")
            await _teardown(project)
            return 1
        message = next_message.result()
        kind = message.get("type")
        if kind == "shutdown":
            connection_lost.cancel()
            await project.stop()
            connection.close()
            return 0
        if kind != "job":
            runtime.log(f"ignored a {kind!r} message from the agent")
            continue
        job = asyncio.ensure_future(run_job(project, message))
        await asyncio.wait({job, connection_lost}, return_when=asyncio.FIRST_COMPLETED)
        if not job.done():
            job.cancel()
            runtime.log(f"the agent closed the connection during job {message.get('job_uuid')}; tearing down")
            await _teardown(project)
            return 1
        status, error = job.result()
        connection.send({"type": "done", "job_uuid": message["job_uuid"], "status": status, "error": error})


async def _teardown(project):
    try:
        await asyncio.wait_for(project.stop(), TEARDOWN_SECONDS)
    except Exception as exc:
        _print_failure("teardown failed", exc)


async def run_job(project, message):
    """Runs one job; returns (status, error) by the outcome rules: a final status the code
    recorded wins; otherwise returning is Success and raising is Failed."""
    job = runtime.begin_job(message["job_uuid"], message.get("attempt", 1))
    raised = None
    try:
        await project.run_job(message.get("job_message"), job)
    except (Exception, SystemExit) as exc:
        raised = exc
        _print_failure(f"job {job.uuid} raised", exc)
    finally:
        runtime.end_job()
    if job.final_status is not None:
        return job.final_status, job.final_error
    if raised is not None:
        return "Failed", describe(raised)
    return "Success", None
