"""The job: greet someone, visit their page with the agent's browser, store one output row.

Events go to the dashboard as they happen; `record_finalsuccess_event` ends the job as
Success, `record_failed_event` as Failed (the row with should_fail=true does that)."""

import asyncio


def is_true(value):
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


async def ctx_script(job_ctx, agent_ctx):
    message = job_ctx.job_message
    monitoring = job_ctx.monitoring_client
    name = job_ctx.name

    print(f"job for {name} on {agent_ctx.name}")
    monitoring.record_success_event(f"{agent_ctx.agent_message.get('greeting')}, {name}!")
    await asyncio.sleep(float(message.get("pause_secs") or 0))

    if is_true(message.get("should_fail")):
        monitoring.record_failed_event(f"{name}: this row asks to fail (should_fail=true)")
        return

    page = await agent_ctx.browser.visit(name)
    monitoring.record_success_event(f"visited {page}")
    agent_ctx.output_manager.send(
        {"kind": "job", "name": name, "details": message.get("details"), **agent_ctx.who()}
    )
    monitoring.record_finalsuccess_event(f"done with {name}")
