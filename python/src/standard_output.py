"""Stand-in for the original agent's ``src.standard_output``: ``send(dict)`` stores one
output row of the run (also outside a job, e.g. while the AgentContext starts)."""

from armada_worker import runtime


class StandardOutput:
    def __init__(self, run_id=None):
        self.run_id = run_id

    def send(self, data):
        if not isinstance(data, dict):
            raise TypeError(f"StandardOutput.send takes a dict (one output row), not {type(data).__name__}")
        runtime.call("output", {"data": data})
