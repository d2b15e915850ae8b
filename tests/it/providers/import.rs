//! `armada import proxies|fingerprints FILE.csv` as a real process against a temporary
//! SQLite file: the original templates, a bad row, duplicates.

use std::path::{Path, PathBuf};

use armada::infra::db::Store;
use armada::infra::db::sqlite::SqliteStore;
use armada::model::PageRequest;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A working directory and database for one test.
struct Workspace {
    dir: tempfile::TempDir,
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Workspace {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir") }
    }

    fn database(&self) -> PathBuf {
        self.dir.path().join("data/armada.db")
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write csv");
        path
    }

    async fn import(&self, kind: &str, file: &Path) -> Run {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_armada"))
            .args(["import", kind])
            .arg(file)
            .current_dir(self.dir.path())
            .env("ARMADA_DATABASE_URL", format!("sqlite:{}", self.database().display()))
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .output()
            .await
            .expect("run armada");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    async fn store(&self) -> SqliteStore {
        let store = SqliteStore::open(&self.database()).await.expect("open the imported database");
        store.migrate().await.expect("migrate");
        store
    }
}

fn all() -> PageRequest {
    PageRequest { page: 1, page_size: 100 }
}

#[tokio::test]
async fn the_original_templates_import() {
    let workspace = Workspace::new();
    let proxies = workspace.import("proxies", &Path::new(FIXTURES).join("armada_proxies_template.csv")).await;
    assert_eq!(proxies.code, Some(0), "{}", proxies.stderr);
    assert!(
        proxies.stdout.starts_with(
            "imported 0 proxies, skipped 0 duplicates, skipped 1 placeholder row of the template \
             (row 2: http://USER:PASS@HOST:PORT)"
        ),
        "{}",
        proxies.stdout
    );
    let fingerprints =
        workspace.import("fingerprints", &Path::new(FIXTURES).join("armada_fingerprints_template.csv")).await;
    assert_eq!(fingerprints.code, Some(0), "{}", fingerprints.stderr);
    assert_eq!(fingerprints.stdout, "imported 1 fingerprint, skipped 0 duplicates\n");

    let store = workspace.store().await;
    assert_eq!(store.list_proxies(all()).await.expect("proxies").total, 0, "the placeholder is not stored");
    let stored = store.random_fingerprint(&Default::default()).await.expect("pick").expect("the template's row");
    assert_eq!(stored.data, serde_json::json!({"fingerprint": "sample_data"}));
    assert_eq!(stored.summary.antibot_vendor.as_deref(), Some("datadome"));
    assert_eq!(stored.summary.collecting_date.map(|d| d.to_string()).as_deref(), Some("2026-02-24T00:00:00Z"));
}

#[tokio::test]
async fn a_bad_row_is_named_and_nothing_of_the_file_is_stored() {
    let workspace = Workspace::new();
    let file = workspace.file(
        "proxies.csv",
        "proxy_url,proxy_provider_name,proxy_type,proxy_rotation_strategy,proxy_location\n\
         http://u:pw1@10.0.0.1:8000,iproyal,residential,sticky,Europe/Paris\n\
         http://u:hidden-pw@10.0.0.2:port,iproyal,residential,sticky,Europe/Paris\n\
         http://u:pw3@10.0.0.3:8000,iproyal,residential,sticky,Europe/Paris\n",
    );
    let run = workspace.import("proxies", &file).await;
    assert_eq!(run.code, Some(2), "a bad file is a configuration error: {}", run.stderr);
    assert!(
        run.stderr.contains("proxies.csv row 3, column proxy_url: \"http://u:***@10.0.0.2:port\" is not a URL"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was imported") && !run.stderr.contains("hidden-pw"), "{}", run.stderr);
    assert_eq!(workspace.store().await.list_proxies(all()).await.expect("list").total, 0, "rows 2 and 4 not stored");

    let fingerprints = workspace.file(
        "fingerprints.csv",
        "antibot_vendor,website,data,collecting_date\n\
         datadome,https://a.example,{\"ok\":1},2026-02-24\n\
         datadome,https://a.example,{broken,2026-02-24\n",
    );
    let run = workspace.import("fingerprints", &fingerprints).await;
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("fingerprints.csv row 3, column data: not valid JSON"), "{}", run.stderr);
    assert_eq!(workspace.store().await.list_fingerprints(all()).await.expect("list").total, 0);
}

#[tokio::test]
async fn duplicates_are_skipped_and_counted() {
    let workspace = Workspace::new();
    let file = workspace.file(
        "proxies.csv",
        "proxy_url,proxy_provider_name,proxy_type,proxy_rotation_strategy,proxy_location\n\
         http://u:p@10.0.0.1:8000,iproyal,residential,sticky,Europe/Paris\n\
         http://u:p@10.0.0.2:8000,iproyal,residential,rotating,\n\
         http://u:p@10.0.0.1:8000,other,mobile,sticky,Asia\n",
    );
    let first = workspace.import("proxies", &file).await;
    assert_eq!(first.stdout, "imported 2 proxies, skipped 1 duplicate\n", "{}", first.stderr);
    let second = workspace.import("proxies", &file).await;
    assert_eq!(second.stdout, "imported 0 proxies, skipped 3 duplicates\n", "{}", second.stderr);

    let fingerprints = workspace.file(
        "fingerprints.csv",
        "antibot_vendor,website,data,collecting_date\n\
         datadome,https://a.example,{\"n\":1},2026-02-24\n\
         datadome,https://a.example,{\"n\":1},2026-02-24 10:30:00\n\
         datadome,https://a.example,{\"n\":1},2026-02-25\n",
    );
    let run = workspace.import("fingerprints", &fingerprints).await;
    assert_eq!(
        run.stdout, "imported 2 fingerprints, skipped 1 duplicate\n",
        "same day = same collection: {}",
        run.stderr
    );
    let store = workspace.store().await;
    assert_eq!(store.list_proxies(all()).await.expect("list").total, 2);
    assert_eq!(store.list_fingerprints(all()).await.expect("list").total, 2);
}

#[tokio::test]
async fn a_missing_file_is_named() {
    let workspace = Workspace::new();
    let run = workspace.import("proxies", Path::new("nowhere.csv")).await;
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.starts_with("armada: error: cannot read nowhere.csv:"), "{}", run.stderr);
}
