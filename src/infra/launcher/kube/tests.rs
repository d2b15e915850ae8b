//! The Kubernetes launcher against the stand-in API server: the conformance suite, and what
//! only Kubernetes has (the Job's body on the wire, pod reasons, API refusals).
