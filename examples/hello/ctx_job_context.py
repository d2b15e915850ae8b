"""Per-job state: built for every job from its merged message (template + its data_job.csv row)."""


class JobContext:
    def __init__(self, job_message, agent_ctx):
        self.job_message = job_message
        self.agent_ctx = agent_ctx
        self.name = job_message.get("name", "world")

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type, exc, tb):
        self.agent_ctx.jobs_done += 1
