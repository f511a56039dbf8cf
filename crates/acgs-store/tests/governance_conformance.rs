//! The governance store on both backends: versioned records changed only by compare-and-set, each commit
//! atomic with its audit events and constitution version, refusals that leave nothing behind, races with exactly
//! one winner (also between two stores on one database), interleaving with the decision log's group commit, and
//! everything kept across reopening.
//!
//! PostgreSQL: `ACGS_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`); every test gets its
//! own schema.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use acgs_audit::event::{GovernanceEvent, LoggedEvent};
use acgs_audit::{LogKey, VerifierKey};
use acgs_store::{
    Checkpointer, ConstitutionVersion, DecisionLog, DecisionStore, GovernanceCommit, GovernanceRecord, LogConfig,
    NewConstitutionVersion, NewEvent, RecordQuery, RecordWrite, Store, StoreError, StoreOptions,
};

const T0: i64 = 1_800_000_000_000_000;

async fn open(url: &str) -> Arc<dyn Store> {
    acgs_store::open(url, &StoreOptions::default()).await.unwrap()
}

fn amendment(id: &str, revision: i64, state: &str, created_at_us: i64) -> GovernanceRecord {
    GovernanceRecord {
        kind: "amendment".into(),
        id: id.into(),
        revision,
        state: state.into(),
        created_at_us,
        updated_at_us: created_at_us + revision,
        body: format!(r#"{{"title":"amendment {id}","revision":{revision},"note":"naïve ✓ \"q\""}}"#),
    }
}

fn create(record: GovernanceRecord) -> RecordWrite {
    RecordWrite {
        record,
        expected_revision: 0,
    }
}

/// `record` as the next revision after the stored one, in `state`.
fn next(record: &GovernanceRecord, state: &str) -> RecordWrite {
    let mut changed = amendment(&record.id, record.revision + 1, state, record.created_at_us);
    changed.kind.clone_from(&record.kind);
    RecordWrite {
        record: changed,
        expected_revision: record.revision,
    }
}

fn event(action: &str, subject: &str, to_state: &str) -> NewEvent {
    NewEvent::governance(
        GovernanceEvent {
            action: action.into(),
            subject: subject.into(),
            actor: "user:alice".into(),
            from_state: None,
            to_state: Some(to_state.into()),
            detail: serde_json::json!({"reason": "naïve ✓"}),
        },
        T0,
    )
}

fn version(label: &str) -> NewConstitutionVersion {
    NewConstitutionVersion {
        hash: format!("{:0>64}", label.replace('.', "")),
        version_label: label.into(),
        name: "Test constitution".into(),
        source_name: "amendment".into(),
        source: format!("[metadata]\nversion = \"{label}\"\n"),
        activated_at_us: T0,
        activated_by: "governance".into(),
        reason: format!("amendment to {label}"),
    }
}

/// A commit of `writes`, each with an event naming its record.
fn commit(writes: Vec<RecordWrite>) -> GovernanceCommit {
    let events = writes
        .iter()
        .map(|w| {
            event(
                "amendment.changed",
                &format!("amendment/{}", w.record.id),
                &w.record.state,
            )
        })
        .collect();
    GovernanceCommit {
        writes,
        events,
        ..Default::default()
    }
}

fn conflict(result: Result<impl std::fmt::Debug, StoreError>) -> String {
    match result {
        Err(StoreError::Conflict(message)) => message,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn invalid(result: Result<impl std::fmt::Debug, StoreError>) -> String {
    match result {
        Err(StoreError::InvalidRecord(message)) => message,
        other => panic!("expected an invalid record, got {other:?}"),
    }
}

/// The log's events from `from_seq` on.
async fn events_from(store: &Arc<dyn Store>, from_seq: i64) -> Vec<(i64, String, LoggedEvent)> {
    store
        .audit_entries(from_seq, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.kind, LoggedEvent::parse(e.event.as_deref().unwrap()).unwrap()))
        .collect()
}

/// Sign a checkpoint over the whole log with `key` and verify the store (leaves, tree, checkpoints, index);
/// returns the number of entries checked, which must be every sequence number up to the log's end.
async fn verified(store: &Arc<dyn Store>, key: &LogKey) -> u64 {
    let decisions: Arc<dyn DecisionStore> = store.clone();
    Checkpointer::new(decisions, key.clone())
        .checkpoint_now()
        .await
        .unwrap();
    let verifier = VerifierKey::parse(&key.verifier_key()).unwrap();
    let report = acgs_store::verify_store(&**store, &verifier).await.unwrap();
    assert_eq!(report.entries as i64, store.last_seq().await.unwrap());
    report.entries
}

fn log_key() -> LogKey {
    LogKey::generate(Some("acgs.test/audit")).unwrap()
}

/// Everything a refused commit must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    records: Vec<GovernanceRecord>,
    last_seq: i64,
    versions: Vec<ConstitutionVersion>,
}

async fn snapshot(store: &Arc<dyn Store>) -> Snapshot {
    Snapshot {
        records: store
            .governance_records(&RecordQuery {
                kind: "amendment".into(),
                ..Default::default()
            })
            .await
            .unwrap(),
        last_seq: store.last_seq().await.unwrap(),
        versions: store.constitution_versions().await.unwrap(),
    }
}

async fn records_are_created_listed_and_updated(url: String) {
    let store = open(&url).await;
    let key = log_key();
    let states = ["draft", "voting", "draft", "voting", "draft"];
    let mut expected_events = Vec::new();
    for (i, state) in states.into_iter().enumerate() {
        let c = commit(vec![create(amendment(&format!("a-{i}"), 1, state, T0 + i as i64))]);
        expected_events.extend(c.events.iter().map(|e| e.event.clone()));
        let done = store.commit_governance(&c).await.unwrap();
        assert_eq!(done.first_seq, i as i64 + 1);
        assert_eq!(done.activated, None);
    }
    let a2 = store.governance_record("amendment", "a-2").await.unwrap().unwrap();
    assert_eq!(a2, amendment("a-2", 1, "draft", T0 + 2));
    assert_eq!(store.governance_record("amendment", "a-9").await.unwrap(), None);
    assert_eq!(store.governance_record("appeal", "a-2").await.unwrap(), None);

    let ids = |records: Vec<GovernanceRecord>| records.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let query = |state: Option<&str>, limit: u32, before: Option<i64>| RecordQuery {
        kind: "amendment".into(),
        state: state.map(Into::into),
        limit,
        before_created_at_us: before,
    };
    let all = store.governance_records(&query(None, 0, None)).await.unwrap();
    assert_eq!(ids(all), ["a-4", "a-3", "a-2", "a-1", "a-0"], "newest first");
    let drafts = store.governance_records(&query(Some("draft"), 0, None)).await.unwrap();
    assert_eq!(ids(drafts), ["a-4", "a-2", "a-0"]);
    let page = store.governance_records(&query(None, 2, None)).await.unwrap();
    assert_eq!(ids(page.clone()), ["a-4", "a-3"]);
    let page = store
        .governance_records(&query(None, 2, Some(page[1].created_at_us)))
        .await
        .unwrap();
    assert_eq!(ids(page.clone()), ["a-2", "a-1"]);
    let page = store
        .governance_records(&query(None, 2, Some(page[1].created_at_us)))
        .await
        .unwrap();
    assert_eq!(ids(page), ["a-0"]);
    let drafts_before = store
        .governance_records(&query(Some("draft"), 1, Some(T0 + 4)))
        .await
        .unwrap();
    assert_eq!(ids(drafts_before), ["a-2"]);
    assert!(
        store
            .governance_records(&RecordQuery {
                kind: "appeal".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .is_empty()
    );

    // An update from the stored revision; the creation time stays as stored whatever the write says.
    let mut update = next(&a2, "voting");
    update.record.created_at_us = T0 + 1_000;
    let c = commit(vec![update.clone()]);
    expected_events.extend(c.events.iter().map(|e| e.event.clone()));
    assert_eq!(store.commit_governance(&c).await.unwrap().first_seq, 6);
    let stored = store.governance_record("amendment", "a-2").await.unwrap().unwrap();
    assert_eq!(
        stored,
        GovernanceRecord {
            created_at_us: T0 + 2,
            ..update.record.clone()
        }
    );
    assert_eq!(stored.revision, 2);
    let c = commit(vec![next(&stored, "accepted")]);
    expected_events.extend(c.events.iter().map(|e| e.event.clone()));
    store.commit_governance(&c).await.unwrap();
    assert_eq!(
        store
            .governance_record("amendment", "a-2")
            .await
            .unwrap()
            .unwrap()
            .revision,
        3
    );
    let voting = store.governance_records(&query(Some("voting"), 0, None)).await.unwrap();
    assert_eq!(ids(voting), ["a-3", "a-1"]);

    // A commit without events appends nothing.
    let quiet = GovernanceCommit {
        writes: vec![create(amendment("a-5", 1, "draft", T0 + 5))],
        ..Default::default()
    };
    assert_eq!(store.commit_governance(&quiet).await.unwrap().first_seq, 0);
    assert_eq!(store.last_seq().await.unwrap(), 7);

    let logged = events_from(&store, 1).await;
    assert_eq!(
        logged.iter().map(|(seq, ..)| *seq).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<_>>()
    );
    assert!(logged.iter().all(|(_, kind, _)| kind == "governance"));
    assert_eq!(
        logged.into_iter().map(|(.., e)| e.event).collect::<Vec<_>>(),
        expected_events
    );
    assert_eq!(verified(&store, &key).await, 7);
}

async fn refused_commits_change_nothing(url: String) {
    let store = open(&url).await;
    let a1 = amendment("a-1", 1, "draft", T0);
    store
        .commit_governance(&commit(vec![create(a1.clone())]))
        .await
        .unwrap();
    let a1_v2 = next(&a1, "voting");
    store.commit_governance(&commit(vec![a1_v2.clone()])).await.unwrap();
    store
        .commit_governance(&GovernanceCommit {
            expect_active: Some(0),
            activation: Some(version("1.0.0")),
            ..Default::default()
        })
        .await
        .unwrap();
    let before = snapshot(&store).await;
    assert_eq!(before.last_seq, 2);
    assert_eq!(before.versions.len(), 1);

    // A stale revision, with an activation that would otherwise succeed.
    let stale = GovernanceCommit {
        expect_active: Some(1),
        activation: Some(version("2.0.0")),
        ..commit(vec![next(&a1, "withdrawn")])
    };
    assert_eq!(
        conflict(store.commit_governance(&stale).await),
        "amendment `a-1` changed (revision 2, expected 1)"
    );
    assert_eq!(snapshot(&store).await, before);

    // A duplicate create.
    let duplicate = commit(vec![create(amendment("a-1", 1, "draft", T0 + 9))]);
    assert_eq!(
        conflict(store.commit_governance(&duplicate).await),
        "amendment `a-1` already exists"
    );
    assert_eq!(snapshot(&store).await, before);

    // An update of a record that does not exist.
    let missing = commit(vec![next(&amendment("a-7", 1, "draft", T0), "voting")]);
    assert_eq!(
        conflict(store.commit_governance(&missing).await),
        "amendment `a-7` does not exist (expected revision 1)"
    );
    assert_eq!(snapshot(&store).await, before);

    // The version in force is not the expected one: with and without an activation, with a valid write.
    for activation in [None, Some(version("2.0.0"))] {
        let wrong_version = GovernanceCommit {
            expect_active: Some(0),
            activation,
            ..commit(vec![next(&a1_v2.record, "accepted")])
        };
        assert_eq!(
            conflict(store.commit_governance(&wrong_version).await),
            "constitution version 1 is in force, expected none"
        );
        assert_eq!(snapshot(&store).await, before);
    }
    let ahead = GovernanceCommit {
        expect_active: Some(3),
        ..Default::default()
    };
    assert_eq!(
        conflict(store.commit_governance(&ahead).await),
        "constitution version 1 is in force, not 3"
    );

    // Two writes whose second fails: neither is written.
    let half = commit(vec![create(amendment("a-2", 1, "draft", T0 + 2)), next(&a1, "voting")]);
    assert!(conflict(store.commit_governance(&half).await).contains("a-1"));
    assert_eq!(snapshot(&store).await, before);
    assert_eq!(store.governance_record("amendment", "a-2").await.unwrap(), None);

    // The log and the records go on from where they were.
    let good = commit(vec![
        create(amendment("a-2", 1, "draft", T0 + 2)),
        next(&a1_v2.record, "voting"),
    ]);
    assert_eq!(store.commit_governance(&good).await.unwrap().first_seq, 3);
    assert_eq!(store.last_seq().await.unwrap(), 4);
    assert_eq!(verified(&store, &log_key()).await, 4);
}

async fn an_activation_commits_with_its_writes_and_events(url: String) {
    let store = open(&url).await;
    let a1 = amendment("a-1", 1, "voting", T0);
    store
        .commit_governance(&commit(vec![create(a1.clone())]))
        .await
        .unwrap();
    assert_eq!(store.active_constitution().await.unwrap(), None);

    let executed = next(&a1, "executed");
    let mut step = commit(vec![executed.clone()]);
    step.events
        .push(event("constitution.activated", "constitution/1", "in-force"));
    step.expect_active = Some(0);
    step.activation = Some(version("1.0.0"));
    let done = store.commit_governance(&step).await.unwrap();
    let first = ConstitutionVersion {
        number: 1,
        version: version("1.0.0"),
    };
    assert_eq!(done.first_seq, 2);
    assert_eq!(done.activated.as_ref(), Some(&first));
    assert_eq!(store.active_constitution().await.unwrap(), Some(first));
    assert_eq!(
        store.governance_record("amendment", "a-1").await.unwrap(),
        Some(executed.record.clone())
    );
    let logged = events_from(&store, 2).await;
    assert_eq!(
        logged.into_iter().map(|(seq, _, e)| (seq, e.event)).collect::<Vec<_>>(),
        vec![(2, step.events[0].event.clone()), (3, step.events[1].event.clone())]
    );

    // The next one follows it; a check of the version in force alone writes nothing of its own.
    let second = GovernanceCommit {
        expect_active: Some(1),
        activation: Some(version("1.1.0")),
        events: vec![event("constitution.activated", "constitution/2", "in-force")],
        ..Default::default()
    };
    let done = store.commit_governance(&second).await.unwrap();
    assert_eq!(done.activated.map(|v| v.number), Some(2));
    assert_eq!(done.first_seq, 4);
    let check_only = GovernanceCommit {
        expect_active: Some(2),
        ..commit(vec![create(amendment("a-2", 1, "draft", T0 + 1))])
    };
    assert_eq!(store.commit_governance(&check_only).await.unwrap().activated, None);
    assert_eq!(store.constitution_versions().await.unwrap().len(), 2);
    // An activation through the constitution store sees the governance commits' versions.
    let refused = store.activate_constitution(1, &version("9.9.9")).await;
    assert!(conflict(refused).contains("no longer"));
    assert_eq!(verified(&store, &log_key()).await, 5);
}

/// `attempts` concurrent commits, each on the store `stores[i % stores.len()]`; returns how many succeeded,
/// after checking that every other one was refused as a conflict.
async fn race(stores: &[Arc<dyn Store>], attempts: Vec<GovernanceCommit>) -> usize {
    let tasks: Vec<_> = attempts
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let store = stores[i % stores.len()].clone();
            tokio::spawn(async move { store.commit_governance(&c).await })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("a racing commit failed otherwise: {e}"),
        }
    }
    won
}

async fn racing_commits_have_one_winner(stores: &[Arc<dyn Store>]) {
    let store = &stores[0];
    let a1 = amendment("a-1", 1, "voting", T0);
    store
        .commit_governance(&commit(vec![create(a1.clone())]))
        .await
        .unwrap();
    let updates = (0..8).map(|i| commit(vec![next(&a1, &format!("state-{i}"))])).collect();
    assert_eq!(race(stores, updates).await, 1);
    assert_eq!(
        store
            .governance_record("amendment", "a-1")
            .await
            .unwrap()
            .unwrap()
            .revision,
        2
    );
    let creates = (0..8)
        .map(|i| commit(vec![create(amendment("a-2", 1, &format!("state-{i}"), T0))]))
        .collect();
    assert_eq!(race(stores, creates).await, 1);
    let activations = (0..8)
        .map(|i| GovernanceCommit {
            expect_active: Some(0),
            activation: Some(version(&format!("1.0.{i}"))),
            events: vec![event("constitution.activated", "constitution/1", "in-force")],
            ..Default::default()
        })
        .collect();
    assert_eq!(race(stores, activations).await, 1);
    assert_eq!(store.constitution_versions().await.unwrap().len(), 1);
    // One event per winner, gap-free, and one tree whichever store appended.
    assert_eq!(store.last_seq().await.unwrap(), 4);
    assert_eq!(verified(store, &log_key()).await, 4);
}

async fn concurrent_commits_on_one_store_have_one_winner(url: String) {
    racing_commits_have_one_winner(&[open(&url).await]).await;
}

/// Two stores opened on one database, as two server processes would.
async fn concurrent_commits_on_two_stores_have_one_winner(url: String) {
    racing_commits_have_one_winner(&[open(&url).await, open(&url).await]).await;
}

async fn commits_interleave_with_the_decision_log(url: String) {
    let store = open(&url).await;
    let key = log_key();
    let decisions: Arc<dyn DecisionStore> = store.clone();
    let log = DecisionLog::start(
        decisions,
        LogConfig {
            max_batch: 16,
            queue_capacity: 4096,
        },
    );
    // Alternately, one after the other.
    let mut record = amendment("a-1", 1, "draft", T0);
    store
        .commit_governance(&commit(vec![create(record.clone())]))
        .await
        .unwrap();
    for n in 0..10 {
        assert_eq!(log.append(common::record(n, "allow")).await.unwrap(), 2 * n as i64 + 2);
        let step = next(&record, &format!("step-{n}"));
        let done = store.commit_governance(&commit(vec![step.clone()])).await.unwrap();
        assert_eq!(done.first_seq, 2 * n as i64 + 3);
        record = step.record;
    }
    assert_eq!(verified(&store, &key).await, 21);

    // Concurrently: decisions from many tasks while one task moves a record along and another creates records.
    let appends: Vec<_> = (100..300)
        .map(|n| {
            let log = log.clone();
            tokio::spawn(async move { log.append(common::record(n, "deny")).await.unwrap() })
        })
        .collect();
    let stepper = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..20 {
                let step = next(&record, &format!("later-{n}"));
                seqs.push(
                    store
                        .commit_governance(&commit(vec![step.clone()]))
                        .await
                        .unwrap()
                        .first_seq,
                );
                record = step.record;
            }
            seqs
        })
    };
    let creator = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..20 {
                let new = create(amendment(&format!("b-{n}"), 1, "draft", T0 + n));
                seqs.push(store.commit_governance(&commit(vec![new])).await.unwrap().first_seq);
            }
            seqs
        })
    };
    let mut seqs: Vec<i64> = Vec::new();
    for task in appends {
        seqs.push(task.await.unwrap());
    }
    let steps = stepper.await.unwrap();
    assert!(
        steps.windows(2).all(|w| w[0] < w[1]),
        "one task's commits in order: {steps:?}"
    );
    seqs.extend(steps);
    seqs.extend(creator.await.unwrap());
    seqs.sort_unstable();
    assert_eq!(seqs, (22..=261).collect::<Vec<i64>>(), "gap-free, each once");
    log.shutdown().await;

    assert_eq!(store.count().await.unwrap(), 210);
    assert_eq!(store.get("dec-000150").await.unwrap().unwrap().outcome, "deny");
    let logged = events_from(&store, 1).await;
    let governance = logged.iter().filter(|(_, kind, _)| kind == "governance").count();
    assert_eq!(governance, 51);
    assert_eq!(
        store
            .governance_record("amendment", "a-1")
            .await
            .unwrap()
            .unwrap()
            .revision,
        31
    );
    assert_eq!(verified(&store, &key).await, 261);
}

async fn input_that_can_never_commit_is_refused(url: String) {
    let store = open(&url).await;
    let before = snapshot(&store).await;
    let mut skipped = create(amendment("a-1", 2, "draft", T0));
    let refused = invalid(store.commit_governance(&commit(vec![skipped.clone()])).await);
    assert!(refused.contains("revision 2 after revision 0"), "{refused}");
    skipped.expected_revision = 1;
    skipped.record.revision = 1;
    invalid(store.commit_governance(&commit(vec![skipped])).await);

    let mut not_json = amendment("a-1", 1, "draft", T0);
    not_json.body = "{\"title\": ".into();
    let refused = invalid(store.commit_governance(&commit(vec![create(not_json)])).await);
    assert!(refused.contains("not JSON"), "{refused}");

    let mut no_kind = amendment("a-1", 1, "draft", T0);
    no_kind.kind.clear();
    invalid(store.commit_governance(&commit(vec![create(no_kind)])).await);

    // A valid write first does not make an invalid second one pass, nor an activation without its check.
    let mixed = commit(vec![
        create(amendment("a-2", 1, "draft", T0)),
        create(amendment("a-3", 3, "draft", T0)),
    ]);
    invalid(store.commit_governance(&mixed).await);
    let unchecked = GovernanceCommit {
        activation: Some(version("1.0.0")),
        ..commit(vec![create(amendment("a-2", 1, "draft", T0))])
    };
    let refused = invalid(store.commit_governance(&unchecked).await);
    assert!(refused.contains("expect_active"), "{refused}");

    assert_eq!(snapshot(&store).await, before);
    assert_eq!(before.last_seq, 0);
    assert_eq!(store.governance_record("amendment", "a-2").await.unwrap(), None);
    assert_eq!(store.active_constitution().await.unwrap(), None);
}

async fn reopening_keeps_everything(url: String) {
    let key = log_key();
    let a1 = amendment("a-1", 1, "draft", T0);
    let before = {
        let store = open(&url).await;
        store
            .commit_governance(&commit(vec![create(a1.clone())]))
            .await
            .unwrap();
        let step = GovernanceCommit {
            expect_active: Some(0),
            activation: Some(version("1.0.0")),
            ..commit(vec![next(&a1, "executed")])
        };
        store.commit_governance(&step).await.unwrap();
        verified(&store, &key).await;
        snapshot(&store).await
    };
    let store = open(&url).await;
    assert_eq!(snapshot(&store).await, before);
    assert_eq!(
        store
            .governance_record("amendment", "a-1")
            .await
            .unwrap()
            .unwrap()
            .state,
        "executed"
    );
    assert_eq!(store.active_constitution().await.unwrap().unwrap().number, 1);
    // The reopened store's first append continues the same tree.
    let a2 = commit(vec![create(amendment("a-2", 1, "draft", T0 + 1))]);
    assert_eq!(store.commit_governance(&a2).await.unwrap().first_seq, 3);
    assert_eq!(verified(&store, &key).await, 3);
}

async fn a_kind_reads_whole_by_id_whatever_the_times(url: String) {
    let store = open(&url).await;
    // Created in one instant, as a bulk import does: a page boundary by time would split ties.
    let ids: Vec<String> = (0..25).map(|i| format!("bot-{i:02}")).collect();
    let writes = ids
        .iter()
        .map(|id| {
            let mut record = amendment(id, 1, "active", T0);
            record.kind = "entity".into();
            create(record)
        })
        .collect();
    store.commit_governance(&commit(writes)).await.unwrap();
    store
        .commit_governance(&commit(vec![create(amendment("zz", 1, "draft", T0))]))
        .await
        .unwrap();
    let mut read = Vec::new();
    let mut after = String::new();
    loop {
        let page = store.governance_records_by_id("entity", &after, 10).await.unwrap();
        let Some(last) = page.last() else { break };
        after.clone_from(&last.id);
        read.extend(page.into_iter().map(|r| r.id));
    }
    assert_eq!(read, ids);
}

/// PostgreSQL only: a record written through one store is announced to another store's watcher once committed;
/// a refused write announces nothing.
async fn another_process_sees_record_writes(url: String) {
    let (writer, watcher) = (open(&url).await, open(&url).await);
    let mut watch = watcher
        .watch_records()
        .await
        .unwrap()
        .expect("PostgreSQL announces record writes");
    let first = amendment("w-1", 1, "draft", T0);
    store_commit(&writer, vec![create(first.clone())]).await;
    let refused = writer.commit_governance(&commit(vec![create(first)])).await;
    assert!(refused.is_err());
    let mut second = amendment("w-2", 1, "draft", T0);
    second.kind = "entity".into();
    store_commit(&writer, vec![create(second)]).await;
    // The channel is the database's: tests in other schemas of the test database announce their writes too.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(std::time::Duration::from_secs(10), watch.recv()).await {
            Ok(Some(acgs_store::RecordChange::Written { kind, id })) if id.starts_with("w-") => {
                seen.push(format!("{kind}/{id}"))
            }
            Ok(Some(_)) => {}
            other => panic!("{other:?} after {seen:?}"),
        }
    }
    assert_eq!(seen, ["amendment/w-1", "entity/w-2"]);
}

async fn store_commit(store: &Arc<dyn Store>, writes: Vec<RecordWrite>) {
    store.commit_governance(&commit(writes)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_announces_record_writes_to_other_processes() {
    another_process_sees_record_writes(common::acgs_test_postgres_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_has_no_other_processes_to_watch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&format!("sqlite://{}/acgs.db", dir.path().display())).await;
    assert!(store.watch_records().await.unwrap().is_none());
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$name(format!("sqlite://{}/acgs.db", dir.path().display())).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::acgs_test_postgres_url()).await;
                }
            )*
        }
    };
}

on_both_backends!(
    records_are_created_listed_and_updated,
    refused_commits_change_nothing,
    an_activation_commits_with_its_writes_and_events,
    concurrent_commits_on_one_store_have_one_winner,
    concurrent_commits_on_two_stores_have_one_winner,
    commits_interleave_with_the_decision_log,
    input_that_can_never_commit_is_refused,
    reopening_keeps_everything,
    a_kind_reads_whole_by_id_whatever_the_times,
);
