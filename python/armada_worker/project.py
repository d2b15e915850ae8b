"""A project written the original way: ``ctx_agent_context.AgentContext``,
``ctx_job_context.JobContext`` and ``ctx_script.ctx_script``, loaded from the working
directory. Only ``ctx_script.py`` is required; without the other two, plain objects stand in."""

import importlib
import os
import types

from armada_worker import runtime
from armada_worker.calling import call_fitted, resolve

RUN_ID = ("run_id", "run_uuid")
POD_INDEX = ("pod_index", "agent_number", "agent_index", "agent_id")

AGENT_CONTEXT_ALIASES = {
    "agent_message": ("agent_message", "agent_msg", "message", "msg", "config", "agent_config", "configuration"),
    "run_id": RUN_ID,
    "pod_index": POD_INDEX,
}
JOB_CONTEXT_ALIASES = {
    "job_message": ("job_message", "job_msg", "message", "msg", "job", "config", "job_config", "configuration"),
    "agent_ctx": ("agent_ctx", "agent_context", "agent", "context", "ctx"),
    "job_uuid": ("job_uuid", "job_id"),
    "run_id": RUN_ID,
    "pod_index": POD_INDEX,
}
SCRIPT_ALIASES = {
    "job_ctx": ("job_ctx", "job_context", "job"),
    "agent_ctx": ("agent_ctx", "agent_context", "agent"),
}


def is_ctx_project(workdir):
    return os.path.exists(os.path.join(workdir, "ctx_script.py"))


def set_if_missing(obj, name, value):
    if getattr(obj, name, None) is None:
        setattr(obj, name, value)


def _optional_class(workdir, module_name, class_name):
    if not os.path.exists(os.path.join(workdir, f"{module_name}.py")):
        return None
    return getattr(importlib.import_module(module_name), class_name)


class CtxProject:
    def __init__(self, workdir):
        self.script = importlib.import_module("ctx_script").ctx_script
        self.agent_class = _optional_class(workdir, "ctx_agent_context", "AgentContext")
        self.job_class = _optional_class(workdir, "ctx_job_context", "JobContext")
        self.agent_object = None
        self.agent_ctx = None

    async def start(self):
        from src.standard_output import StandardOutput

        context = runtime.context()
        values = {
            "agent_message": runtime.agent_message(),
            "run_id": context.get("run_id"),
            "pod_index": context.get("pod_index"),
        }
        if self.agent_class is None:
            agent = types.SimpleNamespace()
        else:
            agent = call_fitted(self.agent_class, values, AGENT_CONTEXT_ALIASES, ["agent_message"])
        set_if_missing(agent, "agent_message", values["agent_message"])
        set_if_missing(agent, "output_manager", StandardOutput(context.get("run_id")))
        self.agent_object = agent
        if hasattr(type(agent), "__aenter__"):
            entered = await type(agent).__aenter__(agent)
        elif hasattr(type(agent), "__enter__"):
            entered = type(agent).__enter__(agent)
        else:
            entered = None
        self.agent_ctx = agent if entered is None else entered

    async def run_job(self, job_message, job):
        from src.monitoring_client import MonitoringClient

        context = runtime.context()
        values = {
            "job_message": job_message,
            "agent_ctx": self.agent_ctx,
            "job_uuid": job.uuid,
            "run_id": context.get("run_id"),
            "pod_index": context.get("pod_index"),
        }
        if self.job_class is None:
            job_ctx = types.SimpleNamespace()
        else:
            job_ctx = call_fitted(self.job_class, values, JOB_CONTEXT_ALIASES, ["job_message", "agent_ctx"])
        set_if_missing(job_ctx, "job_message", job_message)
        client = MonitoringClient(context.get("run_id"), context.get("pod_index"), job.uuid)
        client._given_by_helper = True
        set_if_missing(job_ctx, "monitoring_client", client)

        if hasattr(type(job_ctx), "__aenter__"):
            async with job_ctx as entered:
                await self._script(job_ctx if entered is None else entered)
        elif hasattr(type(job_ctx), "__enter__"):
            with job_ctx as entered:
                await self._script(job_ctx if entered is None else entered)
        else:
            await self._script(job_ctx)

    async def _script(self, job_ctx):
        values = {"job_ctx": job_ctx, "agent_ctx": self.agent_ctx}
        await resolve(call_fitted(self.script, values, SCRIPT_ALIASES, ["job_ctx", "agent_ctx"]))

    async def stop(self):
        agent = self.agent_object
        if agent is None:
            return
        self.agent_object = None
        if hasattr(type(agent), "__aexit__"):
            await type(agent).__aexit__(agent, None, None, None)
        elif hasattr(type(agent), "__exit__"):
            type(agent).__exit__(agent, None, None, None)
