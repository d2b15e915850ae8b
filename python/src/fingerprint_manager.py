"""Stand-in for the original agent's ``src.fingerprint_manager``: a fingerprint from the
fingerprint provider, asked through the agent (``fingerprint`` call) when running under one,
else over HTTP at ``$FINGERPRINT_PROVIDER_URL``."""

import json
import os
import urllib.error
import urllib.request

from armada_worker import runtime
from armada_worker.connection import CallError


def _as_text(fingerprint):
    return fingerprint if isinstance(fingerprint, str) else json.dumps(fingerprint)


class FingerprintManager:
    def __init__(self, config_fingerprint=None):
        self.config_fingerprint = config_fingerprint or {}

    def get_fingerprint(self, additional_data=None):
        """A fresh fingerprint as JSON text, as the provider answers it: asked with this
        manager's config (else the agent message's ``config_fingerprint``) and
        ``additional_data`` (e.g. ``{"desired_ua": "..."}``). Under an agent that cannot
        answer (an older agent, no provider), the fingerprint it fetched at init is returned."""
        if runtime.connected():
            return self._through_the_agent(additional_data)
        return self._from_the_provider(additional_data)

    def _through_the_agent(self, additional_data):
        params = {}
        if self.config_fingerprint:
            params["config_fingerprint"] = dict(self.config_fingerprint)
        if additional_data is not None:
            params["additional_data"] = additional_data
        try:
            return _as_text(runtime.call("fingerprint", params))
        except CallError as exc:
            fingerprint = runtime.context().get("fingerprint")
            if fingerprint is None:
                raise RuntimeError(f"no fingerprint: {exc}") from None
            runtime.log(f"{exc}; using the fingerprint the agent fetched at init")
            return _as_text(fingerprint)

    def _from_the_provider(self, additional_data):
        provider = os.environ.get("FINGERPRINT_PROVIDER_URL")
        if not provider:
            raise RuntimeError("no fingerprint: not under an armada agent and FINGERPRINT_PROVIDER_URL is not set")
        query = dict(self.config_fingerprint)
        if additional_data is not None:
            query["additional_data"] = additional_data
        url = provider.rstrip("/") + "/get-fingerprint"
        headers = {"Content-Type": "application/json"}
        token = os.environ.get("ARMADA_TOKEN")
        if token:
            # The provider requires it when the platform runs with a token.
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(url, data=json.dumps(query).encode(), method="GET", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", "replace")[:300]
            raise RuntimeError(f"fingerprint provider {url} answered {exc.code}: {body}") from None
