"""Stand-in for the original agent's ``src.proxy_manager``. The armada agent prepares the
proxy the agent message asks for (``config_proxy``) before the worker starts; this hands
its local URL to the code."""

from armada_worker import runtime


class ProxyManager:
    def __init__(self, config_proxy=None):
        self.config_proxy = config_proxy or {}

    def launch_proxy(self):
        """The local proxy URL (e.g. ``http://127.0.0.1:8081``), or None when the agent runs
        without a proxy."""
        return runtime.context().get("proxy_url")

    def stop_proxy(self):
        """The agent owns the proxy and stops it; nothing to do here."""
