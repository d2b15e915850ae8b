"""Celery's signals, as receivers lists the helper fires itself: ``worker_init``,
``worker_process_init`` and ``worker_ready`` at init, ``task_prerun``/``task_postrun``
around each job, ``worker_process_shutdown`` and ``worker_shutdown`` at shutdown. Any
other signal name imports too, and is never fired."""


class Signal:
    def __init__(self, name):
        self.name = name
        self._receivers = []

    def connect(self, receiver=None, **options):
        """``@signal.connect`` or ``@signal.connect(sender=..., weak=False)``."""
        if receiver is None:
            return lambda func: self.connect(func, **options)
        self._receivers.append(receiver)
        return receiver

    def disconnect(self, receiver=None, **options):
        if receiver in self._receivers:
            self._receivers.remove(receiver)

    def receivers(self):
        return list(self._receivers)

    def send(self, sender=None, **named):
        return [(receiver, receiver(signal=self, sender=sender, **named)) for receiver in self.receivers()]

    send_robust = send

    def __repr__(self):
        return f"<Signal: {self.name}>"


worker_init = Signal("worker_init")
worker_process_init = Signal("worker_process_init")
worker_ready = Signal("worker_ready")
task_prerun = Signal("task_prerun")
task_postrun = Signal("task_postrun")
worker_process_shutdown = Signal("worker_process_shutdown")
worker_shutdown = Signal("worker_shutdown")


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    signal = Signal(name)
    globals()[name] = signal
    return signal
