//! The access log, idempotency outcomes and settings through the store's one set of queries,
//! on each engine.
mod engines;

use careq_store::access::{self, LogFilter, LogRow, Outcome};
use careq_store::{ReadExt, StoreError, Write};

const NOW: &str = "2030-03-01T08:00:00.000Z";

fn row(at: &str, actor: &str, rtype: &str, rid: &str, patient: Option<&str>) -> LogRow {
    LogRow {
        at: at.to_string(),
        actor_id: actor.to_string(),
        action: "read",
        resource_type: rtype.to_string(),
        resource_id: rid.to_string(),
        ip: "10.0.0.1".to_string(),
        request_id: format!("req_{rid}"),
        patient_id: patient.map(str::to_string),
        client_request_id: None,
        patients: Vec::new(),
    }
}

/// The one row of a request that returned several patients.
fn request(at: &str, action: &'static str, request_id: &str, patients: &[&str]) -> LogRow {
    LogRow {
        action,
        request_id: request_id.to_string(),
        patients: patients.iter().map(|p| p.to_string()).collect(),
        ..row(at, "usr_1", "patient", access::SEVERAL, None)
    }
}

async fn count(s: &careq_store::Store, sql: &'static str) -> i64 {
    s.read(move |r| r.int(sql, &[])).await.unwrap().unwrap()
}

fn user(w: &mut dyn Write, id: &str, name: &str) -> Result<(), StoreError> {
    w.execute(
        "INSERT INTO users (id, username, password_hash, role, created_at, updated_at)
         VALUES ($1, $2, 'x', 'clinician', $3, $3)",
        &[id.into(), name.into(), NOW.into()],
    )?;
    Ok(())
}

async fn append(s: &careq_store::Store, rows: Vec<LogRow>) {
    s.write(move |w| access::append(w, &rows.iter().collect::<Vec<_>>()))
        .await
        .unwrap();
}

#[tokio::test]
async fn rows_append_a_hundred_per_statement_and_read_back_in_order_with_the_actors_name() {
    for e in engines::engines().await {
        let s = &e.store;
        s.write(|w| user(w, "usr_1", "ann")).await.unwrap();
        // 205 rows: two full statements and one of five.
        let mut rows: Vec<LogRow> = (0..205)
            .map(|i| row(NOW, "usr_1", "patient", &format!("pat_{i:03}"), None))
            .collect();
        rows[204].actor_id = "usr_gone".to_string();
        rows[204].client_request_id = Some("client-1".to_string());
        rows[204].patient_id = Some("pat_x".to_string());
        append(s, rows).await;

        let all = s
            .read(|r| access::log(r, &LogFilter::default(), 0, 500))
            .await
            .unwrap();
        assert_eq!(all.len(), 205, "{}", e.name);
        assert!(all.windows(2).all(|p| p[0].seq < p[1].seq), "{}", e.name);
        assert_eq!(all[0].resource_id, "pat_000");
        assert_eq!(all[0].actor_username.as_deref(), Some("ann"), "{}", e.name);
        assert_eq!(all[0].request_id, "req_pat_000");
        assert_eq!(all[0].action, "read");
        let last = &all[204];
        assert_eq!(last.resource_id, "pat_204", "{}", e.name);
        assert_eq!(
            last.actor_username, None,
            "{}: an account that is gone",
            e.name
        );
        assert_eq!(last.client_request_id.as_deref(), Some("client-1"));
        assert_eq!(last.patient_id.as_deref(), Some("pat_x"));

        // A page is `limit + 1` after the given sequence number.
        let after = all[1].seq;
        let page = s
            .read(move |r| access::log(r, &LogFilter::default(), after, 2))
            .await
            .unwrap();
        let ids: Vec<_> = page.iter().map(|x| x.resource_id.as_str()).collect();
        assert_eq!(ids, ["pat_002", "pat_003", "pat_004"], "{}", e.name);
    }
}

#[tokio::test]
async fn a_patients_entries_include_those_about_resources_carrying_their_data() {
    for e in engines::engines().await {
        let s = &e.store;
        append(
            s,
            vec![
                row(NOW, "usr_1", "patient", "pat_1", None),
                row(NOW, "usr_1", "appointment", "apt_1", Some("pat_1")),
                row(NOW, "usr_1", "patient", "pat_2", None),
                row(NOW, "usr_1", "ticket", "tkt_2", Some("pat_2")),
                // Another kind of record with the patient's id: not the patient's.
                row(NOW, "usr_1", "clinic", "pat_1", None),
                row(NOW, "usr_1", "ticket", "tkt_1", Some("pat_1")),
            ],
        )
        .await;
        let about = |t: &'static str, id: &'static str, after: i64, limit: u32| {
            s.read(move |r| access::entries(r, t, id, after, limit))
        };
        let ids = |v: Vec<access::LogEntry>| {
            v.into_iter()
                .map(|x| format!("{}:{}", x.resource_type, x.resource_id))
                .collect::<Vec<_>>()
        };
        let all = about("patient", "pat_1", 0, 10).await.unwrap();
        let first = all[0].seq;
        assert_eq!(
            ids(all),
            ["patient:pat_1", "appointment:apt_1", "ticket:tkt_1"],
            "{}",
            e.name
        );
        assert_eq!(
            ids(about("patient", "pat_1", first, 0).await.unwrap()),
            ["appointment:apt_1"],
            "{}: after the first, one plus the one that says there is more",
            e.name
        );
        assert_eq!(
            ids(about("appointment", "apt_1", 0, 10).await.unwrap()),
            ["appointment:apt_1"],
            "{}",
            e.name
        );
        assert_eq!(
            ids(about("clinic", "pat_1", 0, 10).await.unwrap()),
            ["clinic:pat_1"],
            "{}: only a patient takes in the entries naming it",
            e.name
        );
    }
}

#[tokio::test]
async fn the_log_filters_by_actor_and_type_from_a_time_inclusive_and_before_one_exclusive() {
    for e in engines::engines().await {
        let s = &e.store;
        append(
            s,
            vec![
                row("2030-03-01T08:00:00.000Z", "usr_1", "patient", "p1", None),
                row("2030-03-01T09:00:00.000Z", "usr_2", "patient", "p2", None),
                row("2030-03-01T10:00:00.000Z", "usr_1", "clinic", "c1", None),
                row("2030-03-01T11:00:00.000Z", "usr_1", "patient", "p3", None),
            ],
        )
        .await;
        let find = |f: LogFilter| async move {
            s.read(move |r| access::log(r, &f, 0, 10))
                .await
                .unwrap()
                .into_iter()
                .map(|x| x.resource_id)
                .collect::<Vec<_>>()
        };
        let some = |v: &str| Some(v.to_string());
        let by_actor = LogFilter {
            actor_id: some("usr_1"),
            ..LogFilter::default()
        };
        assert_eq!(find(by_actor).await, ["p1", "c1", "p3"], "{}", e.name);
        let f = LogFilter {
            actor_id: some("usr_1"),
            resource_type: some("patient"),
            from: some("2030-03-01T08:00:00.000Z"),
            before: some("2030-03-01T11:00:00.000Z"),
        };
        assert_eq!(find(f).await, ["p1"], "{}", e.name);
        let window = LogFilter {
            from: some("2030-03-01T09:00:00.000Z"),
            before: some("2030-03-01T10:00:00.000Z"),
            ..LogFilter::default()
        };
        assert_eq!(find(window).await, ["p2"], "{}", e.name);
    }
}

#[tokio::test]
async fn the_log_refuses_changes_and_purge_removes_only_what_the_archive_wrote_out() {
    for e in engines::engines().await {
        let s = &e.store;
        append(
            s,
            vec![
                row("2030-01-01T00:00:00.000Z", "usr_1", "patient", "p1", None),
                row("2030-01-02T00:00:00.000Z", "usr_1", "patient", "p2", None),
                request("2030-01-02T10:00:00.000Z", "search", "req_a", &["pa", "pb"]),
                row("2030-01-03T00:00:00.000Z", "usr_1", "patient", "p3", None),
                request("2030-01-04T00:00:00.000Z", "search", "req_b", &["pa", "pc"]),
                row("2030-02-01T00:00:00.000Z", "usr_1", "patient", "p4", None),
            ],
        )
        .await;
        for sql in [
            "UPDATE access_log SET ip = 'x'",
            "DELETE FROM access_log",
            "UPDATE access_log_patients SET patient_id = 'x'",
            "DELETE FROM access_log_patients",
        ] {
            let changed = s.write(move |w| w.execute(sql, &[])).await;
            assert!(
                refused(&changed),
                "{}: {sql} is refused: {changed:?}",
                e.name
            );
        }

        // As the archive command does: read what is before the cut-off, write it out, then
        // purge through the last entry it wrote.
        let cut = "2030-01-03T00:00:00.000Z";
        let filter = LogFilter {
            before: Some(cut.to_string()),
            ..LogFilter::default()
        };
        let archived = s
            .read(move |r| access::log(r, &filter, 0, 1000))
            .await
            .unwrap();
        let ids: Vec<_> = archived.iter().map(|x| x.resource_id.as_str()).collect();
        assert_eq!(ids, ["p1", "p2", access::SEVERAL], "{}", e.name);
        assert_eq!(
            archived[2].patients,
            ["pa", "pb"],
            "{}: the archive",
            e.name
        );
        let through = archived[2].seq;
        // Appended after the archive was read, with a time before the cut-off: not archived,
        // so it stays.
        append(
            s,
            vec![row(
                "2030-01-01T12:00:00.000Z",
                "usr_1",
                "patient",
                "p5",
                None,
            )],
        )
        .await;
        let purged = s.write(move |w| access::purge(w, cut, through)).await;
        assert_eq!(purged, Ok(3), "{}", e.name);
        let left = s
            .read(|r| access::log(r, &LogFilter::default(), 0, 10))
            .await
            .unwrap();
        let ids: Vec<_> = left.iter().map(|x| x.resource_id.as_str()).collect();
        assert_eq!(ids, ["p3", access::SEVERAL, "p4", "p5"], "{}", e.name);
        assert_eq!(left[1].patients, ["pa", "pc"], "{}", e.name);
        // The purged request's pairs went with it; the kept one's stay.
        let pairs = s
            .read(|r| {
                r.all(
                    "SELECT patient_id FROM access_log_patients ORDER BY patient_id",
                    &[],
                    |row| row.text(0),
                )
            })
            .await
            .unwrap();
        assert_eq!(pairs, ["pa", "pc"], "{}", e.name);
        let pa = s
            .read(|r| access::entries(r, "patient", "pa", 0, 10))
            .await
            .unwrap();
        assert_eq!(pa.len(), 1, "{}: {pa:?}", e.name);
        assert_eq!(pa[0].request_id, "req_b");
        for sql in ["DELETE FROM access_log", "DELETE FROM access_log_patients"] {
            let delete = s.write(move |w| w.execute(sql, &[])).await;
            assert!(
                refused(&delete),
                "{}: the guard is back after a purge: {sql}",
                e.name
            );
        }
    }
}

#[tokio::test]
async fn a_request_that_returned_several_patients_is_one_row_that_each_patients_entries_still_show()
{
    for e in engines::engines().await {
        let s = &e.store;
        s.write(|w| user(w, "usr_1", "ann")).await.unwrap();
        append(
            s,
            vec![
                row(NOW, "usr_1", "patient", "pat_1", Some("pat_1")),
                // The same patient twice in one answer is one pair.
                request(
                    NOW,
                    "search",
                    "req_s1",
                    &["pat_2", "pat_1", "pat_3", "pat_1"],
                ),
                row(NOW, "usr_1", "ticket", "tkt_2", Some("pat_2")),
                request(NOW, "read", "req_s2", &["pat_4", "pat_2"]),
                row(NOW, "usr_1", "patient", "pat_2", None),
            ],
        )
        .await;
        assert_eq!(count(s, "SELECT COUNT(*) FROM access_log").await, 5);
        assert_eq!(
            count(s, "SELECT COUNT(*) FROM access_log_patients").await,
            5,
            "{}: one pair per patient of each request",
            e.name
        );

        // The whole log: each request once, with the patients it returned, in id order.
        let all = s
            .read(|r| access::log(r, &LogFilter::default(), 0, 10))
            .await
            .unwrap();
        let shown: Vec<_> = all
            .iter()
            .map(|x| (x.resource_id.as_str(), x.patients.join(",")))
            .collect();
        assert_eq!(
            shown,
            [
                ("pat_1", String::new()),
                (access::SEVERAL, "pat_1,pat_2,pat_3".to_string()),
                ("tkt_2", String::new()),
                (access::SEVERAL, "pat_2,pat_4".to_string()),
                ("pat_2", String::new()),
            ],
            "{}",
            e.name
        );
        assert_eq!(all[1].resource_type, "patient");
        assert_eq!(all[1].patient_id, None);
        assert_eq!(all[1].actor_username.as_deref(), Some("ann"));
        // A filtered page fills in its requests' patients too.
        let filter = LogFilter {
            resource_type: Some("patient".to_string()),
            ..LogFilter::default()
        };
        let after = all[1].seq;
        let page = s
            .read(move |r| access::log(r, &filter, after, 0))
            .await
            .unwrap();
        assert_eq!(page.len(), 1, "{}", e.name);
        assert_eq!(page[0].patients, ["pat_2", "pat_4"], "{}", e.name);

        // Each patient's entries: the request reads as one about that patient.
        let about = |id: &'static str, after: i64, limit: u32| {
            s.read(move |r| access::entries(r, "patient", id, after, limit))
        };
        let shown = |v: Vec<access::LogEntry>| {
            v.into_iter()
                .map(|x| {
                    assert!(x.patients.is_empty());
                    format!(
                        "{}:{}:{}:{}:{}",
                        x.request_id,
                        x.action,
                        x.resource_type,
                        x.resource_id,
                        x.patient_id.unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            shown(about("pat_1", 0, 10).await.unwrap()),
            [
                "req_pat_1:read:patient:pat_1:pat_1",
                "req_s1:search:patient:pat_1:pat_1",
            ],
            "{}",
            e.name
        );
        let pat_2 = about("pat_2", 0, 10).await.unwrap();
        assert_eq!(pat_2[0].actor_username.as_deref(), Some("ann"));
        assert_eq!(pat_2[0].seq, all[1].seq);
        assert_eq!(
            shown(pat_2),
            [
                "req_s1:search:patient:pat_2:pat_2",
                "req_tkt_2:read:ticket:tkt_2:pat_2",
                "req_s2:read:patient:pat_2:pat_2",
                "req_pat_2:read:patient:pat_2:",
            ],
            "{}",
            e.name
        );
        // Paging walks all three sources in one order: two after the first, then the rest.
        let first = all[1].seq;
        assert_eq!(
            shown(about("pat_2", first, 1).await.unwrap()),
            [
                "req_tkt_2:read:ticket:tkt_2:pat_2",
                "req_s2:read:patient:pat_2:pat_2",
            ],
            "{}: one plus the one that says there is more",
            e.name
        );
        let third = all[3].seq;
        assert_eq!(
            shown(about("pat_2", third, 5).await.unwrap()),
            ["req_pat_2:read:patient:pat_2:"],
            "{}",
            e.name
        );
        assert_eq!(
            shown(about("pat_4", 0, 10).await.unwrap()),
            ["req_s2:read:patient:pat_4:pat_4"],
            "{}",
            e.name
        );
        // Only a patient's entries take in the pairs.
        assert!(s
            .read(|r| access::entries(r, "patient", access::SEVERAL, 0, 10))
            .await
            .unwrap()
            .iter()
            .all(|x| x.patients.is_empty()));
        assert!(s
            .read(|r| access::entries(r, "ticket", "pat_2", 0, 10))
            .await
            .unwrap()
            .is_empty());

        // A row with patients has the one shape of a request row.
        let odd = LogRow {
            patients: vec!["pat_9".to_string(), "pat_8".to_string()],
            ..row(NOW, "usr_1", "patient", "pat_9", None)
        };
        let refused = s
            .write(move |w| access::append(w, &[&odd]))
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, StoreError::Other(m) if m.contains("request row")),
            "{}: {refused:?}",
            e.name
        );
    }
}

#[tokio::test]
async fn many_requests_and_many_patients_in_one_unit_keep_each_requests_own_patients() {
    for e in engines::engines().await {
        let s = &e.store;
        // 150 requests (two statements of rows), with ordinary rows between, and one request
        // of 5,000 patients (pairs in several statements, the largest of 4,096).
        let mut rows = Vec::new();
        for i in 0..150 {
            let (a, b) = (format!("pat_{i:03}_a"), format!("pat_{i:03}_b"));
            rows.push(request(NOW, "search", &format!("req_{i:03}"), &[&b, &a]));
            if i % 7 == 0 {
                rows.push(row(NOW, "usr_1", "patient", &format!("pat_{i:03}_x"), None));
            }
        }
        let big: Vec<String> = (0..5000).map(|i| format!("pat_big_{i:04}")).collect();
        let big_refs: Vec<&str> = big.iter().map(String::as_str).collect();
        rows.push(request(NOW, "search", "req_big", &big_refs));
        let n = rows.len();
        append(s, rows).await;
        assert_eq!(
            count(s, "SELECT COUNT(*) FROM access_log_patients").await,
            300 + 5000,
            "{}",
            e.name
        );
        let all = s
            .read(|r| access::log(r, &LogFilter::default(), 0, 1000))
            .await
            .unwrap();
        assert_eq!(all.len(), n, "{}", e.name);
        for x in &all[..n - 1] {
            let i = &x.request_id["req_".len()..];
            if x.resource_id == access::SEVERAL {
                assert_eq!(
                    x.patients,
                    [format!("pat_{i}_a"), format!("pat_{i}_b")],
                    "{}: {x:?}",
                    e.name
                );
            } else {
                assert!(x.patients.is_empty(), "{}: {x:?}", e.name);
            }
        }
        assert_eq!(all[n - 1].patients, big, "{}", e.name);
        let one = s
            .read(|r| access::entries(r, "patient", "pat_big_4999", 0, 10))
            .await
            .unwrap();
        assert_eq!(one.len(), 1, "{}", e.name);
        assert_eq!(one[0].request_id, "req_big");
        assert_eq!(one[0].resource_id, "pat_big_4999");
    }
}

#[tokio::test]
async fn requests_appended_at_once_by_many_units_each_keep_their_own_patients() {
    for e in engines::engines().await {
        let s = &e.store;
        // Tasks in flight together: SQLite's writer commits them in groups, PostgreSQL's
        // writers each in a transaction of its own, drawing numbers in between.
        let units: Vec<_> = (0..40)
            .map(|i| {
                let rows = vec![
                    row(NOW, "usr_1", "patient", &format!("pat_{i:02}_x"), None),
                    request(
                        NOW,
                        "search",
                        &format!("req_{i:02}"),
                        &[&format!("pat_{i:02}_a"), &format!("pat_{i:02}_b")],
                    ),
                ];
                let s = s.clone();
                tokio::spawn(async move { append(&s, rows).await })
            })
            .collect();
        for u in units {
            u.await.unwrap();
        }
        let all = s
            .read(|r| access::log(r, &LogFilter::default(), 0, 1000))
            .await
            .unwrap();
        assert_eq!(all.len(), 80, "{}", e.name);
        for x in all.iter().filter(|x| x.resource_id == access::SEVERAL) {
            let i = &x.request_id["req_".len()..];
            assert_eq!(
                x.patients,
                [format!("pat_{i}_a"), format!("pat_{i}_b")],
                "{}",
                e.name
            );
        }
    }
}

/// Refused by the log's own guard (its triggers), not by anything else.
fn refused(r: &Result<u64, StoreError>) -> bool {
    matches!(r, Err(StoreError::Other(m)) if m.contains("append-only"))
}

fn outcome(key: &str, created_at: i64) -> Outcome {
    Outcome {
        caller_id: "usr_1".to_string(),
        key: key.to_string(),
        request_hash: "h".to_string(),
        status: 201,
        headers: r#"[["location","/x"]]"#.to_string(),
        body: vec![0, 1, 255],
        created_at,
    }
}

#[tokio::test]
async fn an_outcome_is_stored_once_per_key_found_while_fresh_and_dropped_once_expired() {
    for e in engines::engines().await {
        let s = &e.store;
        let first = outcome("k1", 1000);
        let o = first.clone();
        assert_eq!(
            s.write(move |w| access::save_outcome(w, &o, 0)).await,
            Ok(true)
        );
        let again = outcome("k1", 1001);
        assert_eq!(
            s.write(move |w| access::save_outcome(w, &again, 0)).await,
            Ok(false),
            "{}: the key is taken and the unit still commits",
            e.name
        );
        let find = |caller: &'static str, key: &'static str, since: i64| {
            s.read(move |r| access::find_outcome(r, caller, key, since))
        };
        assert_eq!(
            find("usr_1", "k1", 1000).await,
            Ok(Some(first)),
            "{}",
            e.name
        );
        assert_eq!(
            find("usr_1", "k1", 1001).await,
            Ok(None),
            "{}: too old",
            e.name
        );
        assert_eq!(find("usr_2", "k1", 0).await, Ok(None), "{}", e.name);

        // Saving another drops what was created before the cut-off (1000 < 1001).
        let other = outcome("k2", 2000);
        assert_eq!(
            s.write(move |w| access::save_outcome(w, &other, 1001))
                .await,
            Ok(true)
        );
        assert_eq!(find("usr_1", "k1", 0).await, Ok(None), "{}", e.name);
        assert!(find("usr_1", "k2", 0).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn a_setting_keeps_the_value_stored_first() {
    for e in engines::engines().await {
        let s = &e.store;
        let first = s
            .write(|w| access::setting_or_insert(w, "instance_id", "a"))
            .await;
        assert_eq!(first, Ok("a".to_string()), "{}", e.name);
        let second = s
            .write(|w| access::setting_or_insert(w, "instance_id", "b"))
            .await;
        assert_eq!(second, Ok("a".to_string()), "{}", e.name);
    }
}

#[tokio::test]
async fn a_row_about_a_patient_itself_keeps_the_id_once_and_reads_back_whole() {
    for e in engines::engines().await {
        let s = &e.store;
        append(
            s,
            vec![
                row(NOW, "usr_1", "patient", "pat_1", Some("pat_1")),
                // A merged record read for its survivor: another patient, kept as it is.
                row(NOW, "usr_1", "patient", "pat_old", Some("pat_1")),
                // Written without a patient (a create): stays without one.
                row(NOW, "usr_1", "patient", "pat_2", None),
            ],
        )
        .await;
        assert_eq!(
            count(
                s,
                "SELECT count(*) FROM access_log WHERE patient_id = 'pat_1'"
            )
            .await,
            1,
            "{}: only the merged record's row carries the id in patient_id",
            e.name
        );
        assert_eq!(
            count(s, "SELECT count(*) FROM access_log WHERE patient_id = ''").await,
            1,
            "{}: the row about pat_1 itself is at the shared end of the patient index",
            e.name
        );
        let all = s
            .read(|r| access::log(r, &LogFilter::default(), 0, 10))
            .await
            .unwrap();
        assert_eq!(
            resource_and_patient(&all),
            [
                ("pat_1", Some("pat_1")),
                ("pat_old", Some("pat_1")),
                ("pat_2", None)
            ],
            "{}",
            e.name
        );
        let mine = s
            .read(|r| access::entries(r, "patient", "pat_1", 0, 10))
            .await
            .unwrap();
        assert_eq!(
            resource_and_patient(&mine),
            [("pat_1", Some("pat_1")), ("pat_old", Some("pat_1"))],
            "{}: found once each, by resource and by patient",
            e.name
        );
    }
}

fn resource_and_patient(entries: &[access::LogEntry]) -> Vec<(&str, Option<&str>)> {
    entries
        .iter()
        .map(|x| (x.resource_id.as_str(), x.patient_id.as_deref()))
        .collect()
}
