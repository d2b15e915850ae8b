"""Stand-in for the original agent's ``src.monitoring_client``: the same class and call
shapes, recording through the armada agent (each call returns once the record is stored)."""

from armada_worker import runtime


def _text(content):
    return content if isinstance(content, str) else str(content)


class MonitoringClient:
    def __init__(self, run_uuid=None, agent_number=None, job_uuid=None):
        self.run_uuid = run_uuid
        self.agent_number = agent_number
        self.job_uuid = str(job_uuid) if job_uuid is not None else None
        # True for the client the helper hands to the job (job_ctx.monitoring_client).
        self._given_by_helper = False

    def create_job(self):
        """Registers the job as Running and returns self. The job being processed is already
        registered by the agent, so for it (or with no job_uuid) nothing is sent."""
        current = runtime.current_job_uuid()
        if not self._given_by_helper and self.job_uuid is not None and self.job_uuid != current:
            runtime.call("create_job", {"job_uuid": self.job_uuid})
        return self

    def record_success_event(self, content):
        """An event with status Success; the job goes on."""
        self._event(content, "Success", final=False)

    def record_finalsuccess_event(self, content):
        """An event with status Success that also ends the job as Success."""
        self._event(content, "Success", final=True)

    def record_failed_event(self, content):
        """An event with status Failed that also ends the job as Failed."""
        self._event(content, "Failed", final=True)

    def record_event(self, content, status="Running"):
        """An event with any status (Running, Success, Failed); the job's status is unchanged."""
        self._event(content, status, final=False)

    def update_job_status(self, status):
        """Sets the job's status (Running, Success, Failed) without an event."""
        runtime.call("job_status", self._with_job({"status": status}))
        if status in ("Success", "Failed"):
            runtime.note_final(self.job_uuid, status, None)

    def _event(self, content, status, final):
        params = {"content": _text(content), "status": status}
        if final:
            params["final"] = True
        runtime.call("event", self._with_job(params))
        if final:
            runtime.note_final(self.job_uuid, status, _text(content))

    def _with_job(self, params):
        if self.job_uuid is not None:
            params["job_uuid"] = self.job_uuid
        return params
