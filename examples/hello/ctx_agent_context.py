"""The agent's heavy resources, set up once per agent and shared by every job it runs.

A real project starts a browser, a proxy, a logged-in session here. This one pretends: its
"browser" is a plain object that takes a moment to start. Nothing here uses the network."""

import asyncio


class FakeBrowser:
    def __init__(self, owner):
        self.owner = owner
        self.pages_visited = 0

    async def visit(self, name):
        await asyncio.sleep(0.01)
        self.pages_visited += 1
        return f"https://example.org/hello/{name} (page {self.pages_visited} of {self.owner})"


class AgentContext:
    def __init__(self, agent_message):
        self.agent_message = agent_message
        self.browser = None
        self.jobs_done = 0

    @property
    def name(self):
        return f"agent-{self.agent_message.get('pod_index')}"

    def who(self):
        """What this agent got from its merged message (template + its data_agent.csv row)."""
        proxy = self.agent_message.get("config_proxy") or {}
        return {
            "agent": self.agent_message.get("pod_index"),
            "greeting": self.agent_message.get("greeting"),
            "proxy_location": proxy.get("proxy_location"),
            "screen_visible": self.agent_message.get("screen_visible"),
        }

    async def __aenter__(self):
        print(f"{self.name}: starting the browser (once)")
        await asyncio.sleep(0.2)
        self.browser = FakeBrowser(self.name)
        # The helper gives every AgentContext an output_manager before entering it.
        self.output_manager.send({"kind": "agent_init", **self.who()})
        return self

    async def __aexit__(self, exc_type, exc, tb):
        print(f"{self.name}: closing the browser after {self.jobs_done} jobs")
        self.browser = None
