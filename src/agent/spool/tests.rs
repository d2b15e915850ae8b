use super::*;
use crate::agent::test_support::FlakyBackend;
use crate::infra::db::{NewEvent, NewLogChunk};
use crate::model::Timestamp;

fn event(content: &str) -> Mutation {
    Mutation::CreateEvent(NewEvent {
        event_uuid: Uuid::new_v4(),
        event_content: content.into(),
        job_uuid: Uuid::nil(),
        event_datetime: Timestamp::now(),
        event_status: "Running".into(),
    })
}

fn log(text: &str) -> Mutation {
    Mutation::AppendLog(NewLogChunk { chunk_uuid: Uuid::new_v4(), job_uuid: Uuid::nil(), text: text.into() })
}

const FLUSH: Duration = Duration::from_secs(20);

#[tokio::test]
async fn batches_go_straight_through_while_the_backend_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(FlakyBackend::default());
    let spool = SpoolingBackend::new(inner.clone(), dir.path().join("spool.jsonl")).unwrap();
    let outcomes = spool.apply(vec![event("a"), event("refuse")]).await.unwrap();
    assert!(matches!(outcomes.as_slice(), [Ok(true), Err(BackendError::Rejected { status: 404, .. })]));
    assert_eq!(inner.stored().len(), 1);
    assert!(!spool.path().exists(), "nothing spooled, no file");
}

#[tokio::test]
async fn an_outage_spools_in_order_and_the_spool_is_replayed_once_back() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(FlakyBackend::default());
    let spool = SpoolingBackend::new(inner.clone(), dir.path().join(".armada/spool.jsonl")).unwrap();
    let before = event("before");
    spool.apply(vec![before.clone()]).await.unwrap();

    inner.set_down(true);
    let during = vec![event("one"), log("line\n"), event("refuse"), event("two")];
    let outcomes = spool.apply(during.clone()).await.unwrap();
    assert_eq!(outcomes, vec![Ok(true); 4], "spooled counts as stored");
    assert_eq!(spool.pending(), 4);
    let lines = std::fs::read_to_string(spool.path()).unwrap();
    assert_eq!(lines.lines().count(), 4, "{lines}");
    assert!(lines.lines().all(|l| serde_json::from_str::<RecordOp>(l).is_ok()));

    // Back up, with the spool not replayed yet: a new batch must queue behind it.
    inner.set_down(false);
    let after = event("after");
    spool.apply(vec![after.clone()]).await.unwrap();
    spool.flush(FLUSH).await.unwrap();

    let mut expected = vec![before, during[0].clone(), during[1].clone(), during[3].clone(), after];
    let stored = inner.stored();
    assert_eq!(stored, std::mem::take(&mut expected), "in order, each once, the refused one dropped");
    assert_eq!(std::fs::metadata(spool.path()).unwrap().len(), 0, "the replayed spool is emptied");
    spool.apply(vec![event("direct")]).await.unwrap();
    assert_eq!(inner.stored().len(), 6, "direct again once drained");
}

#[tokio::test]
async fn flush_gives_up_after_its_limit_and_says_where_the_records_are() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(FlakyBackend::default());
    inner.set_down(true);
    let spool = SpoolingBackend::new(inner.clone(), dir.path().join("spool.jsonl")).unwrap();
    spool.apply(vec![event("x"), event("y")]).await.unwrap();
    let left = spool.flush(Duration::from_millis(300)).await.unwrap_err();
    assert_eq!(left, SpoolLeft { path: dir.path().join("spool.jsonl"), records: 2 });
    assert!(left.to_string().contains("spool.jsonl"), "{left}");
}

#[tokio::test]
async fn a_spool_left_on_disk_is_adopted_from_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.jsonl");
    let (done, todo) = (event("already replayed"), event("still pending"));
    let first = serde_json::to_string(&RecordOp::from(done)).unwrap() + "\n";
    let second = serde_json::to_string(&RecordOp::from(todo.clone())).unwrap() + "\n";
    std::fs::write(&path, format!("{first}{second}")).unwrap();
    std::fs::write(offset_path(&path), first.len().to_string()).unwrap();

    let inner = Arc::new(FlakyBackend::default());
    let spool = SpoolingBackend::new(inner.clone(), &path).unwrap();
    spool.flush(FLUSH).await.unwrap();
    assert_eq!(inner.stored(), vec![todo]);
    assert!(!offset_path(&path).exists());
}
