//! The helper's `src.database_connector` in Python's own unit tests
//! (`fixtures/database_connector_test.py`): the SQLite path for real, placeholder translation,
//! and the SQL Server path against a stand-in pymssql (no SQL Server runs here).

use armada::process::ChildSpec;
use tokio::io::AsyncReadExt;

use super::Fixture;

#[tokio::test]
async fn database_connector_unit_tests_pass() {
    let fixture =
        Fixture::new().file("database_connector_test.py", include_str!("fixtures/database_connector_test.py"));
    let helper = fixture.root.path().join("helper");
    // A clean environment (ChildSpec passes on only PATH, HOME, locale…): no SQL_SERVER_* leaks in.
    let mut child = ChildSpec::new("python3", fixture.project())
        .args(["database_connector_test.py"])
        .env("PYTHONPATH", &helper)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .spawn()
        .expect("python3 starts");
    let (mut stdout, mut stderr) = (child.take_stdout().expect("stdout"), child.take_stderr().expect("stderr"));
    let (mut out, mut err) = (String::new(), String::new());
    let (read_out, read_err) = tokio::join!(stdout.read_to_string(&mut out), stderr.read_to_string(&mut err));
    read_out.and(read_err).expect("read the output");
    let status = child.wait().await.expect("python3 exits");
    assert!(status.success(), "{status}\n{out}\n{err}");
    assert!(err.contains("Ran 11 tests") && err.trim_end().ends_with("OK"), "{err}");
}
