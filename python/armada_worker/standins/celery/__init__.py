"""A minimal stand-in for Celery, enough to run the original dashboard's bundled code
without Celery installed: ``Celery(...)`` with ``.task`` (bare or with options) and a
dict-like ``.conf``, ``shared_task``, and ``celery.signals``. Nothing here talks to a
broker: armada's agent hands the jobs over and the helper calls the task itself."""

import functools

from . import signals

__version__ = "0.0.0+armada-stand-in"
__all__ = ["Celery", "Task", "shared_task", "signals", "registered_tasks"]

_tasks = []


def registered_tasks():
    """Every task registered so far, in registration order."""
    return list(_tasks)


class Conf(dict):
    """Celery's settings: a dict that also reads and writes as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value


class Task:
    def __init__(self, func, app=None, bind=False, name=None, **options):
        functools.update_wrapper(self, func)
        self.run = func
        self.app = app
        self.bind = bind
        self.name = name or f"{func.__module__}.{func.__qualname__}"
        self.options = options

    def __call__(self, *args, **kwargs):
        if self.bind:
            return self.run(self, *args, **kwargs)
        return self.run(*args, **kwargs)

    def run_for_job(self, job_message, aliases):
        """Calls the task with the job message if it takes an argument."""
        from armada_worker.calling import call_fitted

        target = functools.partial(self.run, self) if self.bind else self.run
        return call_fitted(target, {"job_message": job_message}, aliases, ["job_message"])

    def delay(self, *args, **kwargs):
        raise NotImplementedError(
            f"{self.name}.delay(): under armada the agent hands jobs to this task itself, one per job; "
            "there is no broker to send tasks to"
        )

    apply_async = delay


def _task_decorator(app, args, options):
    def register(func):
        task = Task(func, app=app, **options)
        _tasks.append(task)
        if app is not None:
            app.tasks[task.name] = task
        return task

    if len(args) == 1 and callable(args[0]) and not options:
        return register(args[0])
    return register


class Celery:
    def __init__(self, main=None, *args, **kwargs):
        self.main = main
        self.conf = Conf(kwargs)
        self.tasks = {}

    def task(self, *args, **options):
        """``@app.task`` or ``@app.task(bind=True, name=...)``."""
        return _task_decorator(self, args, options)

    def config_from_object(self, *args, **kwargs):
        pass

    def autodiscover_tasks(self, *args, **kwargs):
        pass

    def worker_main(self, *args, **kwargs):
        pass

    start = worker_main


def shared_task(*args, **options):
    return _task_decorator(None, args, options)
