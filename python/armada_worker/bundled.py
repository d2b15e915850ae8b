"""The original dashboard's single bundled ``code`` string (``agent_message["code"]``).

That code is a Celery module: it registers its job function with ``@app.task`` and its
setup/teardown with ``celery.signals.worker_process_init.connect`` /
``worker_process_shutdown.connect``. It runs here without Celery: a minimal stand-in
(``standins/celery``) takes Celery's place, the code is executed once at init, the init
signals fire, the task runs once per job with the job message, and the shutdown signals
fire at shutdown.

Celery ran such code on the main thread of a process with no running event loop, and
synchronous code from that era may call ``asyncio.run`` or keep a loop of its own (or use
Playwright's sync API, which is bound to one thread). So all of it runs here on one
dedicated thread that has its own event loop, never on the helper's loop.
"""

import asyncio
import concurrent.futures
import linecache
import os
import sys
import types

from armada_worker import runtime
from armada_worker.calling import call_with_keywords, run_awaitable_here

FILENAME = "<armada bundled code>"
STANDINS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "standins")
TASK_ALIASES = {"job_message": ("job_message", "message", "msg", "job", "data", "payload", "body")}


def _give_thread_a_loop():
    asyncio.set_event_loop(asyncio.new_event_loop())


class BundledProject:
    def __init__(self, code):
        self.code = code
        self.task = None
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="armada-bundled", initializer=_give_thread_a_loop
        )

    async def _on_thread(self, func, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, func, *args)

    async def start(self):
        await self._on_thread(self._load)

    def _load(self):
        if STANDINS_DIR not in sys.path:
            sys.path.insert(0, STANDINS_DIR)
        for name in [n for n in sys.modules if n == "celery" or n.startswith("celery.")]:
            del sys.modules[name]  # a Celery imported earlier must not shadow the stand-in
        import celery
        from celery import signals

        module = types.ModuleType("armada_bundled")
        module.__file__ = FILENAME
        sys.modules[module.__name__] = module
        linecache.cache[FILENAME] = (len(self.code), None, self.code.splitlines(True), FILENAME)
        exec(compile(self.code, FILENAME, "exec"), module.__dict__)

        tasks = celery.registered_tasks()
        if not tasks:
            raise RuntimeError("the bundled code registers no task: decorate its job function with @app.task")
        self.task = tasks[0]
        if len(tasks) > 1:
            names = ", ".join(task.name for task in tasks)
            runtime.log(f"the bundled code registers {len(tasks)} tasks ({names}); each job runs the first one")
        for signal in (signals.worker_init, signals.worker_process_init, signals.worker_ready):
            self._fire(signal)

    def _fire(self, signal, **named):
        for receiver in signal.receivers():
            run_awaitable_here(call_with_keywords(receiver, {"signal": signal, "sender": None, **named}))

    async def run_job(self, job_message, job):
        await self._on_thread(self._run, job_message)

    def _run(self, job_message):
        from celery import signals

        self._fire(signals.task_prerun, task=self.task)
        try:
            run_awaitable_here(self.task.run_for_job(job_message, TASK_ALIASES))
        finally:
            self._fire(signals.task_postrun, task=self.task)

    async def stop(self):
        try:
            await self._on_thread(self._shutdown)
        finally:
            self.executor.shutdown(wait=False)

    def _shutdown(self):
        from celery import signals

        for signal in (signals.worker_process_shutdown, signals.worker_shutdown):
            self._fire(signal)

