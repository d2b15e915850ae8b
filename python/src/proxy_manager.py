"""Stand-in for the original agent's ``src.proxy_manager``. The armada agent prepares the
proxy the agent message asks for (``config_proxy``) before the worker starts: a local proxy
on 127.0.0.1 that forwards to the upstream with its credentials. This hands its URL to the
code, and asks the agent for another upstream when the code wants one."""

from armada_worker import runtime
from armada_worker.connection import CallError


class ProxyManager:
    def __init__(self, config_proxy=None):
        self.config_proxy = config_proxy or {}
        # The upstream the local proxy forwards to since the last switch, password masked.
        self.upstream_proxy = None

    def launch_proxy(self):
        """The local proxy URL (e.g. ``http://127.0.0.1:8081``) for the browser, or None when
        the agent runs without a proxy (``config_proxy.upstream_proxy_enabled`` 0)."""
        return runtime.context().get("proxy_url")

    def switch_upstream_proxy(self):
        """Asks the agent for another upstream proxy (the proxy provider, with the same
        filters); the local proxy's new connections go there. Returns the local proxy URL,
        which does not change; ``self.upstream_proxy`` is the new upstream, password masked.
        Raises RuntimeError with the agent's reason when there is no other upstream."""
        try:
            answer = runtime.call("switch_proxy", {})
        except CallError as exc:
            raise RuntimeError(f"cannot switch the upstream proxy: {exc}") from None
        self.upstream_proxy = answer.get("upstream")
        return answer.get("proxy_url")

    def stop_proxy(self):
        """The agent owns the proxy and stops it; nothing to do here."""
