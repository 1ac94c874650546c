//! Export jobs and the export's reads through the store's one set of queries, on each engine.
mod engines;

use careq_store::jobs::{self, Cell, ExportScope, JobEnd, JobProgress, JobRecord};
use careq_store::{ReadExt, Store, StoreError, Write};

const NOW: &str = "2030-03-01T08:00:00.000Z";
const SINCE: &str = "2030-03-01T07:50:00.000Z";

fn exec(w: &mut dyn Write, sql: &str) -> Result<(), StoreError> {
    w.execute(sql, &[]).map(drop)
}

/// Two users, two clinics, and patients: in cln_1 pat_a (live), pat_b (sealed), pat_c
/// (deleted), pat_d (live, created a day later); in cln_2 pat_e (live).
async fn seed(s: &Store) {
    s.write(|w| {
        for u in ["usr_1", "usr_2"] {
            exec(
                w,
                &format!(
                    "INSERT INTO users (id, username, password_hash, role, created_at, updated_at)
                     VALUES ('{u}', '{u}', 'x', 'admin', '{NOW}', '{NOW}')"
                ),
            )?;
        }
        for c in ["cln_1", "cln_2"] {
            exec(
                w,
                &format!(
                    "INSERT INTO clinics (id, name, timezone, ticket_prefix, created_at, updated_at)
                     VALUES ('{c}', '{c}', 'UTC', 'A', '{NOW}', '{NOW}')"
                ),
            )?;
        }
        for (id, clinic, created, state) in [
            ("pat_a", "cln_1", "2030-03-01T08:00:00.000Z", ""),
            ("pat_b", "cln_1", "2030-03-01T08:00:00.000Z", "sealed_at"),
            ("pat_c", "cln_1", "2030-03-01T08:00:00.000Z", "deleted_at"),
            ("pat_d", "cln_1", "2030-03-02T00:00:00.000Z", ""),
            ("pat_e", "cln_2", "2030-03-01T08:00:00.000Z", ""),
        ] {
            exec(
                w,
                &format!(
                    "INSERT INTO patients (id, clinic_id, mrn, given_name, family_name,
                         date_of_birth, sex, height_cm, given_norm, family_norm, sort_key,
                         created_at, updated_at)
                     VALUES ('{id}', '{clinic}', 'M-{id}', 'Ann', 'Lee', '1990-01-01', 'female',
                         170.5, 'ann', 'lee', 'lee ann {id}', '{created}', '{created}')"
                ),
            )?;
            if !state.is_empty() {
                exec(
                    w,
                    &format!("UPDATE patients SET {state} = '{NOW}' WHERE id = '{id}'"),
                )?;
            }
        }
        Ok::<_, StoreError>(())
    })
    .await
    .unwrap();
}

fn job(id: &str, owner: &str, created_at: &str) -> JobRecord {
    JobRecord {
        id: id.to_string(),
        owner_id: owner.to_string(),
        kind: "patients".to_string(),
        format: "csv".to_string(),
        scope: ExportScope {
            kind: "patients".to_string(),
            clinic_ids: Some(vec!["cln_1".to_string(), "cln \"2\"".to_string()]),
            sealed: true,
            from_day: Some("2030-03-01".to_string()),
            to_day: None,
            windows: Vec::new(),
        },
        ip: "10.0.0.1".to_string(),
        request_id: "req_1".to_string(),
        created_at: created_at.to_string(),
        updated_at: created_at.to_string(),
        ..JobRecord::default()
    }
}

async fn insert(s: &Store, j: JobRecord) -> Result<bool, StoreError> {
    s.write(move |w| jobs::insert(w, &j)).await
}

async fn claim(s: &Store, runner: &'static str, now_ms: i64, lease: i64) -> Option<JobRecord> {
    s.write(move |w| jobs::claim(w, runner, now_ms, lease, NOW, SINCE))
        .await
        .unwrap()
}

async fn find(s: &Store, id: &'static str) -> JobRecord {
    s.read(move |r| jobs::find(r, id)).await.unwrap().unwrap()
}

fn failed() -> JobEnd {
    JobEnd::Failed {
        error: "disk".to_string(),
        at: NOW.to_string(),
    }
}

fn succeeded(expires_at: i64) -> JobEnd {
    JobEnd::Succeeded {
        rows: 7,
        size_bytes: 99,
        at: NOW.to_string(),
        expires_at,
    }
}

async fn finish(s: &Store, id: &'static str, runner: &'static str, end: JobEnd) -> bool {
    s.write(move |w| jobs::finish(w, id, runner, &end))
        .await
        .unwrap()
}

#[tokio::test]
async fn an_owner_has_one_queued_or_running_job_and_a_finished_one_frees_them() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        assert_eq!(
            insert(s, job("job_1", "usr_1", NOW)).await,
            Ok(true),
            "{}",
            e.name
        );
        assert_eq!(
            insert(s, job("job_2", "usr_1", NOW)).await,
            Ok(false),
            "{}: the owner has a queued job",
            e.name
        );
        assert_eq!(
            insert(s, job("job_3", "usr_2", NOW)).await,
            Ok(true),
            "{}",
            e.name
        );

        let stored = find(s, "job_1").await;
        assert_eq!(
            stored,
            job("job_1", "usr_1", NOW).with_state("queued"),
            "{}",
            e.name
        );

        let running = claim(s, "r1", 1000, 2000).await.unwrap();
        assert_eq!(running.id, "job_1");
        assert_eq!(
            insert(s, job("job_2", "usr_1", NOW)).await,
            Ok(false),
            "{}: the owner has a running job",
            e.name
        );
        assert!(finish(s, "job_1", "r1", failed()).await);
        assert_eq!(
            insert(s, job("job_2", "usr_1", NOW)).await,
            Ok(true),
            "{}",
            e.name
        );
        let ended = find(s, "job_1").await;
        assert_eq!(
            (ended.state.as_str(), ended.error.as_deref()),
            ("failed", Some("disk"))
        );
    }
}

trait WithState {
    fn with_state(self, state: &str) -> JobRecord;
}

impl WithState for JobRecord {
    fn with_state(mut self, state: &str) -> JobRecord {
        self.state = state.to_string();
        self
    }
}

#[tokio::test]
async fn claims_take_the_oldest_queued_job_then_one_whose_lease_ran_out() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        insert(s, job("job_b", "usr_1", "2030-03-01T08:00:01.000Z"))
            .await
            .unwrap();
        insert(s, job("job_a", "usr_2", "2030-03-01T08:00:02.000Z"))
            .await
            .unwrap();
        let first = claim(s, "r1", 1000, 2000).await.unwrap();
        assert_eq!(first.id, "job_b", "{}: by creation, not id", e.name);
        assert_eq!((first.state.as_str(), first.runs), ("running", 1));
        assert_eq!(first.updated_at, NOW);
        assert_eq!(claim(s, "r1", 1500, 2500).await.unwrap().id, "job_a");
        assert_eq!(claim(s, "r2", 2000, 3000).await, None, "{}", e.name);

        let waiting = |now: i64| s.read(move |r| jobs::waiting(r, now));
        assert_eq!(
            waiting(2000).await,
            Ok(false),
            "{}: a lease holds up to its end",
            e.name
        );
        assert_eq!(waiting(2001).await, Ok(true), "{}", e.name);

        let again = claim(s, "r2", 2001, 4000).await.unwrap();
        assert_eq!((again.id.as_str(), again.runs), ("job_b", 2), "{}", e.name);
        let p = |rows: i64| JobProgress {
            rows_written: rows,
            rows_total: Some(10),
            lease_until: 5000,
            at: NOW.to_string(),
        };
        let lost = s
            .write(move |w| jobs::progress(w, "job_b", "r1", &p(3)))
            .await;
        assert_eq!(lost, Ok(false), "{}: r1 no longer holds it", e.name);
        let held = s
            .write(move |w| jobs::progress(w, "job_b", "r2", &p(4)))
            .await;
        assert_eq!(held, Ok(true), "{}", e.name);
        let now = find(s, "job_b").await;
        assert_eq!((now.rows_written, now.rows_total), (4, Some(10)));
        assert!(
            !finish(s, "job_b", "r1", succeeded(100)).await,
            "{}",
            e.name
        );
        assert!(finish(s, "job_b", "r2", succeeded(100)).await, "{}", e.name);
        let done = find(s, "job_b").await;
        assert_eq!(
            (
                done.state.as_str(),
                done.rows_total,
                done.size_bytes,
                done.expires_at
            ),
            ("succeeded", Some(7), Some(99), Some(100)),
            "{}",
            e.name
        );
        assert_eq!(done.finished_at.as_deref(), Some(NOW));
        assert_eq!(
            waiting(10_000).await,
            Ok(true),
            "{}: job_a's lease ran out",
            e.name
        );
    }
}

async fn listed(s: &Store, id: &'static str) -> Vec<(String, i64)> {
    s.read(move |r| {
        r.all(
            "SELECT patient_id, version FROM export_patients WHERE job_id = $1 ORDER BY patient_id",
            &[id.into()],
            |x| Ok((x.text(0)?, x.int(1)?)),
        )
    })
    .await
    .unwrap()
}

/// Retires a patient as careq does: the state, a new version, the time of the change.
async fn retire(
    s: &Store,
    id: &'static str,
    column: &'static str,
    value: &'static str,
    at: &'static str,
) {
    s.write(move |w| {
        w.execute(
            &format!(
                "UPDATE patients SET {column} = $1, version = version + 1, updated_at = $2
                 WHERE id = $3"
            ),
            &[value.into(), at.into(), id.into()],
        )
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_file_is_withdrawn_once_a_patient_it_names_is_retired_after_the_export_read_them() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        insert(s, job("job_1", "usr_1", NOW)).await.unwrap();
        claim(s, "r1", 1000, 2000).await.unwrap();
        let batch = |b: Vec<(String, i64)>| s.write(move |w| jobs::add_patients(w, "job_1", &b));
        let p = |id: &str, v: i64| (id.to_string(), v);
        batch(vec![p("pat_a", 1), p("pat_d", 1), p("pat_e", 1)])
            .await
            .unwrap();
        batch(vec![p("pat_a", 5), p("pat_x\"", 2)]).await.unwrap();
        batch(vec![]).await.unwrap();
        assert_eq!(
            listed(s, "job_1").await,
            [p("pat_a", 1), p("pat_d", 1), p("pat_e", 1), p("pat_x\"", 2)],
            "{}: a patient listed keeps its first version",
            e.name
        );
        assert!(finish(s, "job_1", "r1", succeeded(100)).await);
        let withdrawn = || s.read(|r| jobs::withdrawn(r, 10));
        assert_eq!(find(s, "job_1").await.withdrawn, None, "{}", e.name);

        // Retired before the export's claim (less its margin): the file already left it out.
        let early = "2030-03-01T07:00:00.000Z";
        retire(s, "pat_e", "sealed_at", early, early).await;
        assert_eq!(find(s, "job_1").await.withdrawn, None, "{}", e.name);
        assert_eq!(withdrawn().await, Ok(vec![]), "{}", e.name);

        // Changed exactly at the moment from which changes concern the file: it counts.
        retire(s, "pat_d", "merged_into", "pat_a", SINCE).await;
        let why = find(s, "job_1").await.withdrawn;
        assert_eq!(why.as_deref(), Some("merged"), "{}", e.name);
        let sweep = vec![("job_1".to_string(), "csv".to_string(), "merged".to_string())];
        assert_eq!(withdrawn().await, Ok(sweep), "{}", e.name);

        s.write(|w| jobs::mark_removed(w, "job_1", NOW, Some("merged")))
            .await
            .unwrap();
        assert_eq!(withdrawn().await, Ok(vec![]), "{}: removed", e.name);
        assert_eq!(listed(s, "job_1").await, [], "{}: the list went", e.name);
        let gone = find(s, "job_1").await;
        assert_eq!(gone.withdrawn.as_deref(), Some("merged"), "{}", e.name);
        assert_eq!(gone.removed_at.as_deref(), Some(NOW));
        // A later removal keeps the first time and reason.
        s.write(|w| jobs::mark_removed(w, "job_1", "2031-01-01T00:00:00.000Z", None))
            .await
            .unwrap();
        let still = find(s, "job_1").await;
        assert_eq!(
            (still.removed_at.as_deref(), still.withdrawn.as_deref()),
            (Some(NOW), Some("merged"))
        );
    }
}

#[tokio::test]
async fn a_new_run_and_a_failure_forget_the_patients_a_job_listed() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        insert(s, job("job_1", "usr_1", NOW)).await.unwrap();
        let add = || s.write(|w| jobs::add_patients(w, "job_1", &[("pat_a".to_string(), 1)]));
        claim(s, "r1", 1000, 2000).await.unwrap();
        add().await.unwrap();
        // The lease ran out: another runner starts over.
        claim(s, "r2", 3000, 4000).await.unwrap();
        assert_eq!(listed(s, "job_1").await, [], "{}", e.name);
        add().await.unwrap();
        assert!(finish(s, "job_1", "r2", failed()).await);
        assert_eq!(listed(s, "job_1").await, [], "{}", e.name);
    }
}

#[tokio::test]
async fn expired_files_are_those_due_by_now_and_not_yet_removed() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        for (id, owner, expires) in [("job_1", "usr_1", 200), ("job_2", "usr_2", 100)] {
            insert(s, job(id, owner, NOW)).await.unwrap();
            claim(s, "r1", 1000, 2000).await.unwrap();
            let end = succeeded(expires);
            let id = id.to_string();
            s.write(move |w| jobs::finish(w, &id, "r1", &end))
                .await
                .unwrap();
        }
        let expired = |now: i64| async move {
            s.read(move |r| jobs::expired(r, now, 10))
                .await
                .unwrap()
                .into_iter()
                .map(|(id, _)| id)
                .collect::<Vec<_>>()
        };
        assert_eq!(expired(99).await, Vec::<String>::new(), "{}", e.name);
        assert_eq!(expired(150).await, ["job_2"], "{}", e.name);
        assert_eq!(
            expired(200).await,
            ["job_2", "job_1"],
            "{}: soonest first",
            e.name
        );
        s.write(|w| jobs::mark_removed(w, "job_2", NOW, None))
            .await
            .unwrap();
        assert_eq!(expired(200).await, ["job_1"], "{}", e.name);
        assert_eq!(find(s, "job_2").await.withdrawn, None, "{}", e.name);
    }
}

fn scope(kind: &str, clinics: Option<&[&str]>, sealed: bool) -> ExportScope {
    ExportScope {
        kind: kind.to_string(),
        clinic_ids: clinics.map(|c| c.iter().map(|x| x.to_string()).collect()),
        sealed,
        ..ExportScope::default()
    }
}

async fn ids(s: &Store, sc: ExportScope, windows: Option<&'static str>) -> (i64, Vec<String>) {
    s.read(move |r| {
        let n = jobs::count(r, &sc, windows)?;
        let mut all = Vec::new();
        let mut after = String::new();
        loop {
            // Pages of one: every boundary of the keyset is crossed.
            let page = jobs::page(r, &sc, windows, &after, 1)?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            all.extend(page.into_iter().map(|x| x.id));
        }
        Ok::<_, StoreError>((n, all))
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn an_export_of_patients_takes_its_clinics_sealed_records_if_asked_and_its_days() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        let both = (2, vec!["pat_a".to_string(), "pat_d".to_string()]);
        assert_eq!(
            ids(s, scope("patients", Some(&["cln_1"]), false), None).await,
            both,
            "{}",
            e.name
        );
        let (n, with_sealed) = ids(s, scope("patients", Some(&["cln_1"]), true), None).await;
        assert_eq!(
            (n, with_sealed),
            (3, vec!["pat_a".into(), "pat_b".into(), "pat_d".into()])
        );
        let (n, every) = ids(s, scope("patients", None, false), None).await;
        assert_eq!((n, every.len()), (3, 3), "{}: every clinic", e.name);

        // The day of 1 March in cln_1: pat_d, created at the next midnight, is out.
        let day = r#"[{"c":"cln_1","f":null,"t":null,"fs":"2030-03-01T00:00:00","ts":"2030-03-02T00:00:00","fd":"2030-03-01","td":"2030-03-01"}]"#;
        let dated = ids(s, scope("patients", None, false), Some(day)).await;
        assert_eq!(dated, (1, vec!["pat_a".to_string()]), "{}", e.name);
        let open = r#"[{"c":"cln_1","fs":"2030-03-02T00:00:00"}]"#;
        let (_, later) = ids(s, scope("patients", None, false), Some(open)).await;
        assert_eq!(later, ["pat_d"], "{}: from that second on", e.name);

        let sc = scope("patients", Some(&["cln_1"]), false);
        let rows = s
            .read(move |r| jobs::page(r, &sc, None, "", 1))
            .await
            .unwrap();
        let a = &rows[0];
        assert_eq!(a.cells.len(), jobs::export_columns("patients").len());
        assert_eq!(a.cells[2], Cell::Text("M-pat_a".into()), "{}", e.name);
        assert_eq!(a.cells[8], Cell::Null, "{}: no email", e.name);
        assert_eq!(a.cells[10], Cell::Real(170.5), "{}", e.name);
        assert_eq!(a.cells[12], Cell::Int(1), "{}", e.name);
        assert_eq!(a.patient, Some(("pat_a".to_string(), 1)), "{}", e.name);
    }
}

#[tokio::test]
async fn exports_of_appointments_and_tickets_window_their_starts_and_days() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        s.write(|w| {
            for (id, patient, start) in [
                ("apt_1", "pat_a", 1000),
                ("apt_2", "pat_b", 1000),
                ("apt_3", "pat_a", 2000),
            ] {
                exec(
                    w,
                    &format!(
                        "INSERT INTO appointments (id, clinic_id, patient_id, clinician_id,
                             start_at, start_unix, end_unix, duration_minutes, status,
                             created_at, updated_at)
                         VALUES ('{id}', 'cln_1', '{patient}', 'usr_1', 'x', {start},
                             {start} + 600, 10, 'booked', '{NOW}', '{NOW}')"
                    ),
                )?;
            }
            for (id, patient, day, seq) in [
                ("tkt_1", "NULL", "2030-03-01", 1),
                ("tkt_2", "'pat_b'", "2030-03-01", 2),
                ("tkt_3", "'pat_a'", "2030-03-02", 1),
                ("tkt_4", "'pat_a'", "2030-03-03", 1),
            ] {
                exec(
                    w,
                    &format!(
                        "INSERT INTO tickets (id, clinic_id, day, seq, number, patient_id,
                             priority, status, issued_ms, created_at, updated_at)
                         VALUES ('{id}', 'cln_1', '{day}', {seq}, 'A{seq}', {patient},
                             'normal', 'waiting', 0, '{NOW}', '{NOW}')"
                    ),
                )?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
        let apts = scope("appointments", None, false);
        let (n, got) = ids(s, apts.clone(), None).await;
        assert_eq!(
            (n, got),
            (2, vec!["apt_1".into(), "apt_3".into()]),
            "{}",
            e.name
        );
        // [1000, 2000): the start at 2000 is out.
        let w = r#"[{"c":"cln_1","f":1000,"t":2000}]"#;
        let (_, got) = ids(s, apts, Some(w)).await;
        assert_eq!(got, ["apt_1"], "{}", e.name);
        let other = r#"[{"c":"cln_2","f":0,"t":9999}]"#;
        let (n, _) = ids(s, scope("appointments", None, true), Some(other)).await;
        assert_eq!(n, 0, "{}: only the windows' clinics", e.name);

        let (n, got) = ids(s, scope("queue", Some(&["cln_1"]), false), None).await;
        assert_eq!(n, 3, "{}: a ticket without a patient stays", e.name);
        assert_eq!(got, ["tkt_1", "tkt_3", "tkt_4"]);
        let days = r#"[{"c":"cln_1","fd":"2030-03-01","td":"2030-03-02"}]"#;
        let (_, got) = ids(s, scope("queue", None, true), Some(days)).await;
        assert_eq!(
            got,
            ["tkt_1", "tkt_2", "tkt_3"],
            "{}: both days inclusive",
            e.name
        );

        let sc = scope("queue", None, false);
        let rows = s
            .read(move |r| jobs::page(r, &sc, None, "tkt_1", 5))
            .await
            .unwrap();
        assert_eq!(
            rows[0].patient,
            Some(("pat_a".to_string(), 1)),
            "{}",
            e.name
        );
        assert_eq!(rows[0].cells[9], Cell::Null, "{}: never called", e.name);
    }
}

#[tokio::test]
async fn an_exports_reads_in_one_snapshot_miss_rows_committed_meanwhile() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        let writer = s.clone();
        let handle = tokio::runtime::Handle::current();
        let (before, during) = s
            .read(move |r| {
                jobs::snapshot(r, |r| {
                    let sc = scope("patients", None, false);
                    let before = jobs::count(r, &sc, None)?;
                    // Another unit commits a patient while the export reads (this reader thread
                    // waits for it; the runtime's own thread is free).
                    handle.block_on(writer.write(|w| {
                        exec(
                            w,
                            "INSERT INTO patients (id, clinic_id, mrn, given_name,
                                     family_name, date_of_birth, sex, given_norm, family_norm,
                                     sort_key, created_at, updated_at)
                                 VALUES ('pat_z', 'cln_2', 'M-z', 'Zed', 'Zed', '1990-01-01',
                                     'male', 'zed', 'zed', 'zed zed', 'x', 'x')",
                        )
                    }))?;
                    let page = jobs::page(r, &sc, None, "pat_y", 10)?;
                    Ok::<_, StoreError>((before, jobs::count(r, &sc, None)? + page.len() as i64))
                })
            })
            .await
            .unwrap();
        assert_eq!((before, during), (3, 3), "{}", e.name);
        let after = s
            .read(|r| jobs::count(r, &scope("patients", None, false), None))
            .await;
        assert_eq!(after, Ok(4), "{}: the patient was committed", e.name);
        if e.name == "postgres" {
            let in_write = s
                .write(|w| {
                    jobs::snapshot(w, |r| jobs::count(r, &scope("patients", None, false), None))
                })
                .await;
            assert!(in_write.is_err(), "{}: never inside a write unit", e.name);
        }
    }
}

#[tokio::test]
async fn concurrent_claims_on_postgresql_skip_a_job_another_claim_holds() {
    for e in engines::engines().await {
        // SQLite's one writer runs claims one after another: nothing to skip.
        if e.name != "postgres" {
            continue;
        }
        let s = &e.store;
        seed(s).await;
        insert(s, job("job_1", "usr_1", "2030-03-01T08:00:01.000Z"))
            .await
            .unwrap();
        insert(s, job("job_2", "usr_2", "2030-03-01T08:00:02.000Z"))
            .await
            .unwrap();
        let (claimed_tx, claimed) = std::sync::mpsc::channel::<String>();
        let (go, go_rx) = std::sync::mpsc::channel::<()>();
        let (claimed_tx, go_rx) = (
            std::sync::Mutex::new(claimed_tx),
            std::sync::Mutex::new(go_rx),
        );
        // The first claim holds its job (uncommitted) until told to go on.
        let owner = s.clone();
        let first = async move {
            owner
                .write(move |w| {
                    let j = jobs::claim(w, "r1", 1000, 2000, NOW, SINCE)?;
                    let id = j.map(|j| j.id).unwrap_or_default();
                    let _ = claimed_tx.lock().unwrap().send(id.clone());
                    let _ = go_rx.lock().unwrap().recv();
                    Ok::<_, StoreError>(id)
                })
                .await
        };
        let first = tokio::spawn(first);
        let held = tokio::task::spawn_blocking(move || claimed.recv().unwrap())
            .await
            .unwrap();
        assert_eq!(held, "job_1");
        // Without SKIP LOCKED this claim would wait on job_1's row, then take it too.
        let second = claim(s, "r2", 1000, 2000).await.map(|j| j.id);
        assert_eq!(second.as_deref(), Some("job_2"));
        go.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok("job_1".to_string()));
    }
}
