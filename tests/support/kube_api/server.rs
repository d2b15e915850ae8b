//! The stand-in's HTTP side: routes, the recording and auth layer, and the watch stream.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use k8s_openapi::api::authorization::v1::{SelfSubjectAccessReview, SubjectAccessReviewStatus};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{ApiState, Recorded, lock, pods};

type Shared = Arc<ApiState>;

pub(super) fn router(state: Shared) -> Router {
    Router::new()
        .route("/apis/batch/v1/namespaces/{ns}/jobs", post(create_job))
        .route("/apis/batch/v1/namespaces/{ns}/jobs/{name}", delete(delete_job))
        .route("/api/v1/namespaces/{ns}/pods", get(list_or_watch_pods))
        .route("/api/v1/namespaces/{ns}/pods/{name}", delete(delete_pod))
        .route("/api/v1/namespaces/{ns}/secrets", post(create_secret))
        .route("/api/v1/namespaces/{ns}/secrets/{name}", put(replace_secret))
        .route("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", post(access_review))
        .fallback(|request: Request| async move {
            status(
                404,
                "NotFound",
                &format!("the stand-in does not serve {} {}", request.method(), request.uri().path()),
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), record_and_authorise))
        .with_state(state)
}

/// A Kubernetes `Status` failure.
fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(body)).into_response()
}

/// The body as `T`, or the 400 answer saying why it is not one.
fn parse<T: DeserializeOwned>(body: &Bytes, kind: &str) -> Result<T, Box<Response>> {
    serde_json::from_slice(body)
        .map_err(|e| Box::new(status(400, "BadRequest", &format!("body is not a valid {kind}: {e}"))))
}

fn created<T: serde::Serialize>(object: &T) -> Response {
    (StatusCode::CREATED, axum::Json(object)).into_response()
}

/// Records the request, checks the bearer token, and applies configured refusals.
async fn record_and_authorise(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024).await.unwrap_or_default();
    let query: BTreeMap<String, String> =
        parts.uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let path = parts.uri.path().to_string();
    let method = parts.method.to_string();
    lock(&state.inner).requests.push(Recorded {
        method: method.clone(),
        path: path.clone(),
        query,
        body: serde_json::from_slice(&bytes).ok(),
    });
    let expected = format!("Bearer {}", state.token);
    if parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return status(401, "Unauthorized", "Unauthorized");
    }
    let resource = resource_of(&path);
    let refusal = lock(&state.inner).refusals.iter().find(|r| r.method == method && r.resource == resource).cloned();
    if let Some(refusal) = refusal {
        return status(refusal.code, &refusal.reason, &refusal.message);
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// `jobs` of `/apis/batch/v1/namespaces/ns/jobs/name`: the plural after the namespace (or version).
fn resource_of(path: &str) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.iter().position(|s| *s == "namespaces") {
        Some(i) if segments.len() > i + 2 => segments[i + 2].to_string(),
        _ => segments.last().copied().unwrap_or_default().to_string(),
    }
}

async fn create_job(State(state): State<Shared>, Path(ns): Path<String>, body: Bytes) -> Response {
    let mut job: Job = match parse(&body, "batch/v1 Job") {
        Ok(job) => job,
        Err(response) => return *response,
    };
    let Some(name) = job.metadata.name.clone() else {
        return status(422, "Invalid", "Job.batch is invalid: metadata.name: Required value");
    };
    let completions = job.spec.as_ref().and_then(|s| s.completions).unwrap_or(1).max(0) as usize;
    {
        let mut inner = lock(&state.inner);
        if inner.jobs.contains_key(&(ns.clone(), name.clone())) {
            return status(409, "AlreadyExists", &format!("jobs.batch \"{name}\" already exists"));
        }
        inner.serial += 1;
        job.metadata.uid = Some(format!("job-uid-{}", inner.serial));
        job.metadata.namespace = Some(ns.clone());
        job.metadata.creation_timestamp = Some(pods::now());
        inner.jobs.insert((ns.clone(), name.clone()), job.clone());
        if let Some(message) = inner.pod_creation_refusal.clone() {
            inner.failed_creates.push((ns, name, format!("Error creating: {message}")));
            return created(&job);
        }
    }
    for index in 0..completions {
        let serial = {
            let mut inner = lock(&state.inner);
            inner.serial += 1;
            inner.serial
        };
        state.start_pod(&ns, pods::new_pod(&job, &ns, index, serial), index);
    }
    created(&job)
}

/// Deletes the Job; with `Background` or `Foreground` propagation (the default for API
/// calls is orphaning in batch/v1 only for kubectl; here: anything but `Orphan`) its pods
/// are deleted gracefully.
async fn delete_job(State(state): State<Shared>, Path((ns, name)): Path<(String, String)>, body: Bytes) -> Response {
    let options: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let propagation = options["propagationPolicy"].as_str().unwrap_or("Orphan").to_string();
    let mut inner = lock(&state.inner);
    let Some(job) = inner.jobs.remove(&(ns.clone(), name.clone())) else {
        return status(404, "NotFound", &format!("jobs.batch \"{name}\" not found"));
    };
    if propagation != "Orphan" {
        let owned: Vec<String> = inner
            .pods
            .iter()
            .filter(|((pod_ns, _), entry)| {
                *pod_ns == ns
                    && entry.pod.metadata.labels.as_ref().and_then(|l| l.get("batch.kubernetes.io/job-name"))
                        == Some(&name)
            })
            .map(|((_, pod), _)| pod.clone())
            .collect();
        for pod in owned {
            state.delete_pod_gracefully(&mut inner, &ns, &pod);
        }
    }
    (StatusCode::OK, axum::Json(job)).into_response()
}

async fn delete_pod(State(state): State<Shared>, Path((ns, name)): Path<(String, String)>, body: Bytes) -> Response {
    let options: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut inner = lock(&state.inner);
    let Some(entry) = inner.pods.get(&(ns.clone(), name.clone())) else {
        return status(404, "NotFound", &format!("pods \"{name}\" not found"));
    };
    let pod = entry.pod.clone();
    if options["gracePeriodSeconds"].as_i64() == Some(0) {
        state.remove_pod(&mut inner, &ns, &name);
    } else {
        state.delete_pod_gracefully(&mut inner, &ns, &name);
    }
    (StatusCode::OK, axum::Json(pod)).into_response()
}

/// `k=v`, `k==v`, `k!=v`, `k` and `!k` terms, all of which must hold.
fn selector_matches(selector: Option<&str>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    selector.unwrap_or_default().split(',').map(str::trim).filter(|t| !t.is_empty()).all(|term| {
        if let Some((key, value)) = term.split_once("!=") {
            labels.get(key.trim()).map(String::as_str) != Some(value.trim())
        } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
            labels.get(key.trim()).map(String::as_str) == Some(value.trim())
        } else if let Some(key) = term.strip_prefix('!') {
            !labels.contains_key(key)
        } else {
            labels.contains_key(term)
        }
    })
}

async fn list_or_watch_pods(
    State(state): State<Shared>,
    Path(ns): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let selector = query.get("labelSelector").cloned();
    if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
        return watch_pods(state, ns, selector, &query);
    }
    let inner = lock(&state.inner);
    let items: Vec<&Pod> = inner
        .pods
        .iter()
        .filter(|((pod_ns, _), entry)| *pod_ns == ns && selector_matches(selector.as_deref(), &entry.pod))
        .map(|(_, entry)| &entry.pod)
        .collect();
    let body = json!({"apiVersion": "v1", "kind": "PodList",
        "metadata": {"resourceVersion": inner.resource_version.to_string()}, "items": items});
    axum::Json(body).into_response()
}

/// Newline-delimited watch events after `resourceVersion` (all current pods as ADDED first
/// when it is absent or `0`), until `timeoutSeconds`.
fn watch_pods(state: Shared, ns: String, selector: Option<String>, query: &BTreeMap<String, String>) -> Response {
    let since: u64 = query.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
    let timeout = Duration::from_secs(query.get("timeoutSeconds").and_then(|t| t.parse().ok()).unwrap_or(290));
    let deadline = tokio::time::Instant::now() + timeout;
    let mut initial = Vec::new();
    let start = {
        let inner = lock(&state.inner);
        if since == 0 {
            for entry in inner.pods.iter().filter(|((pod_ns, _), _)| *pod_ns == ns).map(|(_, e)| e) {
                initial.push(json!({"type": "ADDED", "object": entry.pod}));
            }
            inner.resource_version
        } else {
            since
        }
    };
    let changed = state.changed.subscribe();
    let first = futures::stream::iter(initial.into_iter().map(|event| Ok::<_, std::io::Error>(line(&event))));
    let rest = futures::stream::unfold((state, start, changed), move |(state, mut seen, mut changed)| {
        let ns = ns.clone();
        let selector = selector.clone();
        async move {
            loop {
                let batch: Vec<Value> = {
                    let inner = lock(&state.inner);
                    let news: Vec<Value> = inner
                        .log
                        .iter()
                        .filter(|(version, pod_ns, _, pod)| {
                            *version > seen && *pod_ns == ns && selector_matches(selector.as_deref(), pod)
                        })
                        .map(|(_, _, kind, pod)| json!({"type": kind, "object": pod}))
                        .collect();
                    seen = inner.resource_version;
                    news
                };
                if !batch.is_empty() {
                    let bytes: Vec<u8> = batch.iter().flat_map(|event| line(event).to_vec()).collect();
                    return Some((Ok(Bytes::from(bytes)), (state, seen, changed)));
                }
                match tokio::time::timeout_at(deadline, changed.changed()).await {
                    Ok(Ok(())) => {}
                    _ => return None,
                }
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures::StreamExt::chain(first, rest)))
        .unwrap_or_else(|_| status(500, "InternalError", "cannot build the watch response"))
}

fn line(event: &Value) -> Bytes {
    let mut text = event.to_string();
    text.push('\n');
    Bytes::from(text)
}

async fn create_secret(State(state): State<Shared>, Path(ns): Path<String>, body: Bytes) -> Response {
    let mut secret: Secret = match parse(&body, "v1 Secret") {
        Ok(secret) => secret,
        Err(response) => return *response,
    };
    let name = secret.metadata.name.clone().unwrap_or_default();
    let mut inner = lock(&state.inner);
    if inner.secrets.contains_key(&(ns.clone(), name.clone())) {
        return status(409, "AlreadyExists", &format!("secrets \"{name}\" already exists"));
    }
    secret.metadata.namespace = Some(ns.clone());
    inner.secrets.insert((ns, name), secret.clone());
    created(&secret)
}

async fn replace_secret(
    State(state): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    method: Method,
    body: Bytes,
) -> Response {
    let mut secret: Secret = match parse(&body, "v1 Secret") {
        Ok(secret) => secret,
        Err(response) => return *response,
    };
    let mut inner = lock(&state.inner);
    if !inner.secrets.contains_key(&(ns.clone(), name.clone())) {
        return status(404, "NotFound", &format!("secrets \"{name}\" not found ({method})"));
    }
    secret.metadata.namespace = Some(ns.clone());
    inner.secrets.insert((ns, name), secret.clone());
    (StatusCode::OK, axum::Json(secret)).into_response()
}

async fn access_review(State(state): State<Shared>, body: Bytes) -> Response {
    let mut review: SelfSubjectAccessReview = match parse(&body, "SelfSubjectAccessReview") {
        Ok(review) => review,
        Err(response) => return *response,
    };
    let attributes = review.spec.resource_attributes.clone().unwrap_or_default();
    let wanted = (
        attributes.group.unwrap_or_default(),
        attributes.resource.unwrap_or_default(),
        attributes.verb.unwrap_or_default(),
    );
    let allowed = lock(&state.inner).allowed.contains(&wanted);
    review.status = Some(SubjectAccessReviewStatus {
        allowed,
        reason: allowed.then(|| {
            "RBAC: allowed by RoleBinding \"armada-role-binding/default\" of Role \"armada-role\" to \
             ServiceAccount \"default/default\""
                .to_string()
        }),
        ..Default::default()
    });
    created(&review)
}
