//! Validation before anything is stored: the upload becomes a [`Project`], the pipeline makes
//! the [`RunPlan`](crate::pipeline::RunPlan), the project is packed into its bundle, and the
//! messages get what the platform adds (`_armada`, `code`, `job_uuid`). Pure: no engine is
//! touched, so every user mistake is refused here, before a run exists.

use bytes::Bytes;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::OrchestratorSettings;
use super::upload::Upload;
use crate::http::ApiError;
use crate::model::{AGENT_RUN_CONFIG_KEY, AgentRunConfig, JOB_UUID_KEY};
use crate::pipeline::{JobMessages, NamedBytes, ProjectInput, RunSettings, plan_run};
use crate::project::{Bundle, NamedFile, Project, ProjectError, TuneKind};

/// Key of the original's bundled code string in an agent message.
pub const CODE_KEY: &str = "code";

/// A validated run, ready to dispatch. Job messages are already serialised (one copy of each,
/// as bytes), so a 100,000-job run holds no `Value` tree per job.
#[derive(Debug)]
pub struct PreparedRun {
    pub run_id: Uuid,
    pub settings: RunSettings,
    /// Agent message *i*, with `run_id`, `pod_index`, `_armada` and (when sent) `code`.
    pub agent_messages: Vec<Value>,
    /// Job *j*'s uuid, also under `job_uuid` in its message.
    pub job_uuids: Vec<Uuid>,
    /// Job *j*'s message as JSON bytes.
    pub job_bodies: Vec<Bytes>,
    pub bundle: Bundle,
    pub requirements_txt: Option<String>,
}

/// Upload → project → plan → bundle → messages. Errors are 400 (413 for a project over its
/// caps) naming the file, row and field.
pub fn prepare(upload: Upload, settings: &OrchestratorSettings) -> Result<PreparedRun, ApiError> {
    let Upload { parts, files, tune, run_uuid } = upload;
    let project = Project::from_upload(parts, files, settings.limits).map_err(project_error)?;
    let tune_file = choose_tune(&project, tune, &settings.default_tune)?;
    let plan = plan_run(&ProjectInput {
        template: named(project.template()),
        tune: tune_file.map(named),
        data_agent: project.data_agent().map(named),
        data_job: project.data_job().map(named),
        run_id: run_uuid,
    })
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let bundle = project.to_bundle().map_err(project_error)?;
    let requirements_txt = project.requirements_txt().map(|file| String::from_utf8_lossy(file.bytes).into_owned());
    let run_config = AgentRunConfig {
        job_timeout_secs: plan.settings.job_timeout_secs,
        max_attempts: plan.settings.max_attempts,
        worker_command: plan.settings.worker_command.clone(),
        bundle_sha256: Some(bundle.sha256.clone()),
        bundle_size: Some(bundle.size),
        has_requirements: requirements_txt.is_some(),
        number_of_agents: plan.settings.number_of_agents,
        number_of_jobs: plan.settings.number_of_jobs,
    };
    let run_config = serde_json::to_value(&run_config).map_err(ApiError::internal)?;
    let agent_messages = plan
        .agent_messages
        .into_iter()
        .map(|message| complete_agent_message(message, &run_config, project.python_code()))
        .collect();
    let (job_uuids, job_bodies) = serialise_jobs(&plan.job_messages)?;
    Ok(PreparedRun {
        run_id: plan.run_id,
        settings: plan.settings,
        agent_messages,
        job_uuids,
        job_bodies,
        bundle,
        requirements_txt,
    })
}

/// A project refused: over a cap is 413, the project's own fault 400, a local failure 500.
pub fn project_error(error: ProjectError) -> ApiError {
    match error {
        ProjectError::TooLarge { .. } => ApiError::too_large(error.to_string()),
        _ if error.is_input_error() => ApiError::bad_request(error.to_string()),
        _ => ApiError::internal(error),
    }
}

fn named(file: NamedFile<'_>) -> NamedBytes<'_> {
    NamedBytes { name: file.name, bytes: file.bytes }
}

/// The uploaded `configtune` wins; else the `tune` part's file (which must exist); else the
/// platform's default tune when the project has it.
fn choose_tune<'a>(
    project: &'a Project,
    asked: Option<TuneKind>,
    default: &TuneKind,
) -> Result<Option<NamedFile<'a>>, ApiError> {
    if let Some(kind) = project.explicit_tune() {
        return Ok(project.tune(kind));
    }
    match asked {
        Some(kind) => project.tune(&kind).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!(
                "{kind}: the tune part asks for it but the project has no such file; add it, send it as the \
                 configtune part, or leave the tune part out"
            ))
        }),
        None => Ok(project.tune(default)),
    }
}

/// Adds `_armada` and, when the message has no code of its own, the bundled `python_code`.
fn complete_agent_message(message: Value, run_config: &Value, python_code: Option<&str>) -> Value {
    let mut map = match message {
        Value::Object(map) => map,
        // The pipeline only makes objects; anything else is kept whole under a key.
        other => Map::from_iter([("message".to_owned(), other)]),
    };
    map.insert(AGENT_RUN_CONFIG_KEY.to_owned(), run_config.clone());
    if let Some(code) = python_code
        && !has_code(&map)
    {
        map.insert(CODE_KEY.to_owned(), Value::String(code.to_owned()));
    }
    Value::Object(map)
}

fn has_code(map: &Map<String, Value>) -> bool {
    match map.get(CODE_KEY) {
        None | Some(Value::Null) => false,
        Some(Value::String(code)) => !code.trim().is_empty(),
        Some(_) => true,
    }
}

/// Gives each job message its uuid and serialises it, one message at a time (a large run never
/// holds its messages as JSON trees).
fn serialise_jobs(messages: &JobMessages) -> Result<(Vec<Uuid>, Vec<Bytes>), ApiError> {
    let mut uuids = Vec::with_capacity(messages.len());
    let mut bodies = Vec::with_capacity(messages.len());
    for mut message in messages.iter() {
        let job_uuid = Uuid::new_v4();
        if let Value::Object(map) = &mut message {
            map.insert(JOB_UUID_KEY.to_owned(), Value::String(job_uuid.to_string()));
        }
        bodies.push(Bytes::from(serde_json::to_vec(&message).map_err(ApiError::internal)?));
        uuids.push(job_uuid);
    }
    Ok((uuids, bodies))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::settings::Settings;

    fn settings() -> OrchestratorSettings {
        OrchestratorSettings::from_settings(&Settings::embedded(std::path::Path::new("unused.db")))
    }

    fn upload(template: &str, data_job: Option<&str>, python_code: Option<&str>) -> Upload {
        let mut upload = Upload::default();
        upload.parts.configtemplate = Some(("t.json".into(), Bytes::from(template.to_owned())));
        upload.parts.data_job = data_job.map(|csv| ("jobs.csv".into(), Bytes::from(csv.to_owned())));
        upload.parts.python_code = python_code.map(str::to_owned);
        upload
    }

    #[test]
    fn messages_get_the_run_config_the_code_and_job_uuids() {
        let template = r#"{"run_message": {"number_of_agents": 2, "max_attempts": 5},
            "default_agent_message": {}, "default_job_message": {"kind": "visit"}}"#;
        let prepared = prepare(upload(template, Some("url\na\nb\nc\n"), Some("print(1)")), &settings()).expect("ok");
        assert_eq!((prepared.agent_messages.len(), prepared.job_bodies.len()), (2, 3));
        let agent = &prepared.agent_messages[1];
        assert_eq!(agent["pod_index"], 1);
        assert_eq!(agent[CODE_KEY], "print(1)");
        let config = AgentRunConfig::from_agent_message(agent).expect("present").expect("valid");
        assert_eq!((config.max_attempts, config.number_of_jobs), (5, 3));
        assert_eq!(config.bundle_sha256.as_deref(), Some(prepared.bundle.sha256.as_str()));
        let job: Value = serde_json::from_slice(&prepared.job_bodies[2]).expect("json");
        assert_eq!(job[JOB_UUID_KEY], prepared.job_uuids[2].to_string());
        assert_eq!((job["url"].clone(), job["kind"].clone()), (json!("c"), json!("visit")));
    }

    #[test]
    fn code_of_the_template_is_kept() {
        let template = r#"{"run_message": {"number_of_agents": 1, "number_of_jobs": 1},
            "default_agent_message": {"code": "mine"}}"#;
        let prepared = prepare(upload(template, None, Some("bundled")), &settings()).expect("ok");
        assert_eq!(prepared.agent_messages[0][CODE_KEY], "mine");
    }

    #[test]
    fn a_tune_the_project_lacks_is_refused_by_name() {
        let template = r#"{"run_message": {"number_of_agents": 1, "number_of_jobs": 1}}"#;
        let mut with_tune = upload(template, None, None);
        with_tune.tune = Some(TuneKind::Distant);
        let err = prepare(with_tune, &settings()).unwrap_err();
        assert!(err.detail.starts_with("config/config_distant.json: the tune part asks"), "{err}");
    }
}
