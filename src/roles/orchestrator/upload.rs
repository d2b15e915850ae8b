//! Reading `POST /bot/start`'s multipart body into an [`Upload`]: the dashboard's parts, our
//! `project` archive, repeated `files`, `tune` and `run_uuid`, each under its cap, the whole
//! body under `ARMADA_MAX_UPLOAD_BYTES`, unknown parts refused by name.

use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};
use bytes::{Bytes, BytesMut};
use uuid::Uuid;

use super::OrchestratorSettings;
use crate::http::ApiError;
use crate::project::{Limit, ProjectParts, TuneKind};

/// Our parts besides the dashboard's ([`ProjectParts::PART_NAMES`]).
pub const EXTRA_PARTS: [&str; 3] = ["files", "tune", "run_uuid"];

/// Cap on the small text parts (`tune`, `run_uuid`).
const TEXT_PART_BYTES: u64 = 1024;

/// Everything the client sent, read but not yet validated as a project.
#[derive(Debug, Default)]
pub struct Upload {
    pub parts: ProjectParts,
    /// The folder upload: `(relative path, bytes)`, one per `files` part.
    pub files: Vec<(String, Bytes)>,
    /// `tune=local|distant`: which of the project's tune files to apply when no `configtune` came.
    pub tune: Option<TuneKind>,
    /// A client-chosen run id.
    pub run_uuid: Option<Uuid>,
}

/// Reads the whole body; 413 when the body or a part is over its cap, 400 for anything
/// malformed or unknown.
pub async fn read_upload(request: Request, settings: &OrchestratorSettings) -> Result<Upload, ApiError> {
    let max_total = settings.max_upload_bytes as u64;
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_total) {
        return Err(upload_too_large(max_total));
    }
    let mut multipart = Multipart::from_request(request, &()).await.map_err(|rejection| {
        ApiError::bad_request(format!(
            "expected a multipart/form-data body with a configtemplate part: {}",
            rejection.body_text()
        ))
    })?;
    let mut upload = Upload::default();
    let mut unknown: Vec<String> = Vec::new();
    let mut total = 0u64;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().unwrap_or_default().to_owned();
        let Some(cap) = part_cap(&name, settings) else {
            read_field(&mut field, &name, None, &mut total, max_total).await?;
            if !unknown.contains(&name) {
                unknown.push(name);
            }
            continue;
        };
        let bytes = read_field(&mut field, &name, Some(cap), &mut total, max_total).await?;
        match name.as_str() {
            "files" => {
                if filename.trim().is_empty() {
                    return Err(ApiError::bad_request(
                        "each files part needs the file's path in the project as its filename \
                         (e.g. config/config_template.json)",
                    ));
                }
                upload.files.push((filename, bytes));
            }
            "tune" => upload.tune = parse_tune(&text(&name, &bytes)?)?,
            "run_uuid" => upload.run_uuid = parse_run_uuid(&text(&name, &bytes)?)?,
            _ => {
                upload.parts.set(&name, filename, bytes).map_err(|e| ApiError::bad_request(e.to_string()))?;
            }
        }
    }
    if !unknown.is_empty() {
        let shown: Vec<String> = unknown.iter().map(|n| format!("{n:?}")).collect();
        let known: Vec<&str> = ProjectParts::PART_NAMES.iter().chain(EXTRA_PARTS.iter()).copied().collect();
        return Err(ApiError::bad_request(format!(
            "unknown part{} {}; the parts are: {}",
            if unknown.len() == 1 { "" } else { "s" },
            shown.join(", "),
            known.join(", ")
        )));
    }
    Ok(upload)
}

/// The most bytes a known part may hold; `None` for a part name we do not take.
fn part_cap(name: &str, settings: &OrchestratorSettings) -> Option<u64> {
    match name {
        "project" => Some(settings.limits.max_compressed_bytes),
        "tune" | "run_uuid" => Some(TEXT_PART_BYTES),
        "files" => Some(settings.limits.max_file_bytes),
        _ if ProjectParts::PART_NAMES.contains(&name) => Some(settings.limits.max_file_bytes),
        _ => None,
    }
}

/// Reads one part, counting it against its cap and the whole body's; `cap: None` drains it.
async fn read_field(
    field: &mut Field<'_>,
    name: &str,
    cap: Option<u64>,
    total: &mut u64,
    max_total: u64,
) -> Result<Bytes, ApiError> {
    let mut buffer = BytesMut::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        *total += chunk.len() as u64;
        if let Some(cap) = cap {
            if buffer.len() as u64 + chunk.len() as u64 > cap {
                return Err(ApiError::too_large(format!(
                    "the {name} part is over its limit of {}; leave large data out of the project (or raise the limit)",
                    Limit::Bytes(cap)
                )));
            }
            buffer.extend_from_slice(&chunk);
        }
        if *total > max_total {
            return Err(upload_too_large(max_total));
        }
    }
    Ok(buffer.freeze())
}

fn upload_too_large(max_total: u64) -> ApiError {
    ApiError::too_large(format!(
        "the upload is over the limit of {} (ARMADA_MAX_UPLOAD_BYTES); leave large data, virtualenvs and build \
         outputs out of the project",
        Limit::Bytes(max_total)
    ))
}

fn multipart_error(error: MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::too_large(format!("the upload is too large: {}", error.body_text()));
    }
    ApiError::bad_request(format!("cannot read the multipart body: {}", error.body_text()))
}

fn text(name: &str, bytes: &[u8]) -> Result<String, ApiError> {
    std::str::from_utf8(bytes)
        .map(|text| text.trim().to_owned())
        .map_err(|_| ApiError::bad_request(format!("the {name} part is not UTF-8 text")))
}

/// `local` | `distant`; empty counts as not sent.
pub fn parse_tune(raw: &str) -> Result<Option<TuneKind>, ApiError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "local" => Ok(Some(TuneKind::Local)),
        "distant" => Ok(Some(TuneKind::Distant)),
        other => Err(ApiError::bad_request(format!(
            "the tune part must be local (config/config_local.json) or distant (config/config_distant.json), got {other:?}"
        ))),
    }
}

/// A UUID other than the nil one; empty counts as not sent.
pub fn parse_run_uuid(raw: &str) -> Result<Option<Uuid>, ApiError> {
    if raw.is_empty() {
        return Ok(None);
    }
    match Uuid::parse_str(raw) {
        Ok(id) if id.is_nil() => Err(ApiError::bad_request("the run_uuid part must not be the nil UUID")),
        Ok(id) => Ok(Some(id)),
        Err(e) => Err(ApiError::bad_request(format!("the run_uuid part {raw:?} is not a UUID: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;
    use crate::settings::Settings;

    const BOUNDARY: &str = "armada-test-boundary";

    /// A multipart request without a Content-Length: `(name, filename, bytes)` per part.
    fn request(parts: &[(&str, Option<&str>, &[u8])]) -> Request {
        let mut body = Vec::new();
        for (name, filename, bytes) in parts {
            body.extend_from_slice(
                format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
            );
            if let Some(filename) = filename {
                body.extend_from_slice(format!("; filename=\"{filename}\"").as_bytes());
            }
            body.extend_from_slice(b"\r\n\r\n");
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        Request::builder()
            .method("POST")
            .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(Body::from(body))
            .expect("request")
    }

    fn settings(max_upload_bytes: usize) -> OrchestratorSettings {
        let mut settings = Settings::embedded(std::path::Path::new("unused.db"));
        settings.max_upload_bytes = max_upload_bytes;
        OrchestratorSettings::from_settings(&settings)
    }

    #[tokio::test]
    async fn parts_land_where_they_belong() {
        let id = Uuid::new_v4().to_string();
        let upload = read_upload(
            request(&[
                ("configtemplate", Some("t.json"), b"{}"),
                ("files", Some("hello/main.py"), b"print(1)"),
                ("files", Some("hello/config/data_job.csv"), b"a\n1\n"),
                ("tune", None, b"distant"),
                ("run_uuid", None, id.as_bytes()),
                ("python_code", None, b"print(2)"),
            ]),
            &settings(1 << 20),
        )
        .await
        .expect("read");
        assert_eq!(upload.parts.configtemplate.map(|(name, _)| name), Some("t.json".to_owned()));
        assert_eq!(
            upload.files.iter().map(|(path, _)| path.as_str()).collect::<Vec<_>>(),
            ["hello/main.py", "hello/config/data_job.csv"]
        );
        assert_eq!((upload.tune, upload.run_uuid.map(|u| u.to_string())), (Some(TuneKind::Distant), Some(id)));
        assert_eq!(upload.parts.python_code.as_deref(), Some("print(2)"));
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_stopped_as_it_arrives() {
        let half = vec![b'x'; 600];
        let error = read_upload(
            request(&[("data_job", Some("a.csv"), &half), ("data_agent", Some("b.csv"), &half)]),
            &settings(1000),
        )
        .await
        .unwrap_err();
        assert_eq!(error.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(error.detail.starts_with("the upload is over the limit of 1000 bytes"), "{error}");
        let fine = read_upload(request(&[("data_job", Some("a.csv"), &[b'x'; 1001])]), &settings(1 << 20)).await;
        assert!(fine.is_ok(), "a part under its cap is fine");
        let error = read_upload(request(&[("tune", None, &[b'x'; 1025])]), &settings(1 << 20)).await.unwrap_err();
        assert_eq!(
            error.detail,
            "the tune part is over its limit of 1 KiB; leave large data out of the project (or raise the limit)"
        );
    }

    #[tokio::test]
    async fn unknown_parts_are_named_together() {
        let error = read_upload(
            request(&[("bogus", None, b"1"), ("configtemplate", Some("t.json"), b"{}"), ("bogus", None, b"2")]),
            &settings(1 << 20),
        )
        .await
        .unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(
            error.detail.starts_with("unknown part \"bogus\"; the parts are: configtemplate, configtune"),
            "{error}"
        );
    }

    #[test]
    fn tune_accepts_local_and_distant_only() {
        assert_eq!(parse_tune(" Local ").ok(), Some(Some(TuneKind::Local)));
        assert_eq!(parse_tune("distant").ok(), Some(Some(TuneKind::Distant)));
        assert_eq!(parse_tune("").ok(), Some(None));
        let err = parse_tune("staging").unwrap_err();
        assert!(err.detail.contains("\"staging\"") && err.status == StatusCode::BAD_REQUEST, "{err}");
    }

    #[test]
    fn run_uuid_must_be_a_real_uuid() {
        let id = Uuid::new_v4();
        assert_eq!(parse_run_uuid(&id.to_string()).ok(), Some(Some(id)));
        assert_eq!(parse_run_uuid("").ok(), Some(None));
        assert!(parse_run_uuid("run-1").unwrap_err().detail.contains("not a UUID"));
        assert!(parse_run_uuid(&Uuid::nil().to_string()).unwrap_err().detail.contains("nil"));
    }
}
