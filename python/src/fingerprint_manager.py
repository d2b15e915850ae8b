"""Stand-in for the original agent's ``src.fingerprint_manager``: the fingerprint the agent
fetched for this agent, or one asked of the fingerprint provider."""

import json
import os
import urllib.error
import urllib.request

from armada_worker import runtime


class FingerprintManager:
    def __init__(self, config_fingerprint=None):
        self.config_fingerprint = config_fingerprint or {}

    def get_fingerprint(self, additional_data=None):
        """The fingerprint as JSON text, as the provider answers it."""
        fingerprint = runtime.context().get("fingerprint")
        if fingerprint is not None:
            return fingerprint if isinstance(fingerprint, str) else json.dumps(fingerprint)
        provider = os.environ.get("FINGERPRINT_PROVIDER_URL")
        if not provider:
            raise RuntimeError(
                "no fingerprint: the agent was given none and FINGERPRINT_PROVIDER_URL is not set"
            )
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
