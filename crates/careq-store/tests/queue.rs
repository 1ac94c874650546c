//! The queue (queue days and tickets) through the store's one set of queries, on each engine.
mod engines;

use careq_store::clinics::{self, ClinicFields};
use careq_store::queue::{self, NewTicket, Priority, TicketRow, TicketStatus};
use careq_store::{Store, StoreError, Write};

const NOW: &str = "2030-03-01T08:00:00.000Z";
const DAY: &str = "2030-03-01";
const MIN: i64 = 60_000;

fn clinic() -> ClinicFields<'static> {
    ClinicFields {
        name: "North",
        timezone: "Europe/Vienna",
        ticket_prefix: "A",
        country: None,
    }
}

async fn with_clinics(s: &Store) {
    s.write(|w| {
        for id in ["cln_1", "cln_2"] {
            clinics::insert(w, id, &clinic(), NOW)?;
        }
        Ok::<_, StoreError>(())
    })
    .await
    .unwrap();
}

/// Issues a ticket as the app does: the day's next number, then the ticket, in one unit.
fn issue(
    w: &mut dyn Write,
    id: &str,
    clinic_id: &str,
    day: &str,
    priority: Priority,
    issued_ms: i64,
) -> Result<i64, StoreError> {
    let seq = queue::next_ticket_seq(w, clinic_id, day)?.ok_or(StoreError::Busy)?;
    let number = format!("A-{seq:03}");
    let t = NewTicket {
        id,
        clinic_id,
        day,
        seq,
        number: &number,
        patient_id: None,
        priority,
    };
    queue::insert_ticket(w, &t, issued_ms, NOW)?;
    Ok(seq)
}

/// Stores tickets (id, priority, issued_ms) on cln_1's day, in that order.
async fn tickets(s: &Store, list: &'static [(&'static str, Priority, i64)]) {
    s.write(move |w| {
        for &(id, p, ms) in list {
            issue(w, id, "cln_1", DAY, p, ms)?;
        }
        Ok::<_, StoreError>(())
    })
    .await
    .unwrap();
}

async fn find(s: &Store, id: &'static str) -> TicketRow {
    s.read(move |r| queue::find_ticket(r, id))
        .await
        .unwrap()
        .unwrap()
}

async fn set(
    s: &Store,
    id: &'static str,
    to: TicketStatus,
    counter: Option<&'static str>,
    at: i64,
) {
    let version = find(s, id).await.version;
    let done = s
        .write(move |w| queue::set_ticket_status(w, id, version, to, counter, at, NOW))
        .await;
    assert_eq!(done, Ok(true), "{id} to {to:?}");
}

fn ids(v: &[TicketRow]) -> Vec<&str> {
    v.iter().map(|t| t.id.as_str()).collect()
}

#[tokio::test]
async fn a_hundred_tickets_issued_at_once_on_one_day_are_numbered_one_to_a_hundred_exactly() {
    for e in engines::engines().await {
        with_clinics(&e.store).await;
        let units: Vec<_> = (0..100_i64)
            .map(|i| {
                let s = e.store.clone();
                tokio::spawn(async move {
                    s.write(move |w| {
                        issue(w, &format!("tkt_{i}"), "cln_1", DAY, Priority::Normal, i)
                    })
                    .await
                })
            })
            .collect();
        let mut seqs = Vec::new();
        for u in units {
            seqs.push(u.await.unwrap().unwrap());
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=100).collect::<Vec<_>>(), "{}", e.name);
        let stored = e
            .store
            .read(|r| {
                use careq_store::ReadExt;
                r.int(
                    "SELECT COUNT(DISTINCT seq) FROM tickets WHERE clinic_id = 'cln_1'
                       AND day = $1 AND seq BETWEEN 1 AND 100",
                    &[DAY.into()],
                )
            })
            .await;
        assert_eq!(stored, Ok(Some(100)), "{}", e.name);
    }
}

#[tokio::test]
async fn each_clinic_and_day_counts_its_own_numbers_from_one() {
    for e in engines::engines().await {
        let s = &e.store;
        with_clinics(s).await;
        let seqs = s
            .write(|w| {
                Ok::<_, StoreError>([
                    issue(w, "t1", "cln_1", DAY, Priority::Normal, 1)?,
                    issue(w, "t2", "cln_1", DAY, Priority::Urgent, 2)?,
                    issue(w, "t3", "cln_2", DAY, Priority::Normal, 3)?,
                    issue(w, "t4", "cln_1", "2030-03-02", Priority::Normal, 4)?,
                    issue(w, "t5", "cln_1", DAY, Priority::Normal, 5)?,
                ])
            })
            .await;
        assert_eq!(seqs, Ok([1, 2, 1, 1, 3]), "{}", e.name);
    }
}

#[tokio::test]
async fn a_closed_day_gives_no_number_and_uses_none_up_until_it_reopens() {
    for e in engines::engines().await {
        let s = &e.store;
        with_clinics(s).await;
        tickets(
            s,
            &[("t1", Priority::Normal, 1), ("t2", Priority::Normal, 2)],
        )
        .await;
        let closed = |clinic: &'static str, day: &'static str| {
            s.read(move |r| queue::is_day_closed(r, clinic, day))
        };
        assert_eq!(closed("cln_1", DAY).await, Ok(false), "{}", e.name);
        s.write(|w| queue::set_day_closed(w, "cln_1", DAY, Some(NOW)))
            .await
            .unwrap();
        assert_eq!(closed("cln_1", DAY).await, Ok(true), "{}", e.name);
        // Asked twice while closed: neither ask may use a number up, even in a unit that
        // commits.
        for _ in 0..2 {
            let none = s.write(|w| queue::next_ticket_seq(w, "cln_1", DAY)).await;
            assert_eq!(none, Ok(None), "{}", e.name);
        }
        s.write(|w| queue::set_day_closed(w, "cln_1", DAY, None))
            .await
            .unwrap();
        assert_eq!(closed("cln_1", DAY).await, Ok(false), "{}", e.name);
        let next = s.write(|w| queue::next_ticket_seq(w, "cln_1", DAY)).await;
        assert_eq!(next, Ok(Some(3)), "{}", e.name);

        // A day closed before its first ticket: the row starts at 0, so reopened it gives 1.
        s.write(|w| queue::set_day_closed(w, "cln_2", DAY, Some(NOW)))
            .await
            .unwrap();
        assert_eq!(closed("cln_2", DAY).await, Ok(true), "{}", e.name);
        assert_eq!(closed("cln_2", "2030-03-02").await, Ok(false), "{}", e.name);
        let none = s.write(|w| queue::next_ticket_seq(w, "cln_2", DAY)).await;
        assert_eq!(none, Ok(None), "{}", e.name);
        s.write(|w| queue::set_day_closed(w, "cln_2", DAY, None))
            .await
            .unwrap();
        let first = s.write(|w| queue::next_ticket_seq(w, "cln_2", DAY)).await;
        assert_eq!(first, Ok(Some(1)), "{}", e.name);
    }
}

#[tokio::test]
async fn a_ticket_is_stored_waiting_as_issued_and_found_by_its_id() {
    for e in engines::engines().await {
        let s = &e.store;
        with_clinics(s).await;
        tickets(s, &[("t1", Priority::Urgent, 1_234)]).await;
        let t = find(s, "t1").await;
        let want = TicketRow {
            id: "t1".into(),
            clinic_id: "cln_1".into(),
            day: DAY.into(),
            number: "A-001".into(),
            patient_id: None,
            priority: Priority::Urgent,
            status: TicketStatus::Waiting,
            counter: None,
            recalled: false,
            issued_ms: 1_234,
            called_ms: None,
            finished_ms: None,
            version: 1,
            updated_at: NOW.into(),
        };
        assert_eq!(t, want, "{}", e.name);
        assert_eq!(s.read(|r| queue::find_ticket(r, "t9")).await, Ok(None));
    }
}

#[tokio::test]
async fn the_head_of_each_priority_is_its_earliest_waiting_ticket_of_that_clinic_and_day() {
    for e in engines::engines().await {
        let s = &e.store;
        with_clinics(s).await;
        tickets(
            s,
            &[
                ("n_called", Priority::Normal, 1),
                ("n_late", Priority::Normal, 30),
                ("n_first", Priority::Normal, 20),
                ("u_first", Priority::Urgent, 25),
                ("u_late", Priority::Urgent, 26),
            ],
        )
        .await;
        set(s, "n_called", TicketStatus::Called, Some("1"), 40).await;
        s.write(|w| {
            issue(w, "other_clinic", "cln_2", DAY, Priority::Emergency, 0)?;
            issue(
                w,
                "other_day",
                "cln_1",
                "2030-02-28",
                Priority::Emergency,
                0,
            )
        })
        .await
        .unwrap();
        let mut heads = s
            .write(|w| queue::head_of_each_priority(w, "cln_1", DAY))
            .await
            .unwrap();
        heads.sort_by_key(|t| t.issued_ms);
        // No emergency waits on this clinic's day, so two heads.
        assert_eq!(ids(&heads), ["n_first", "u_first"], "{}", e.name);
        let none = s
            .write(|w| queue::head_of_each_priority(w, "cln_2", "2030-03-05"))
            .await;
        assert_eq!(none, Ok(vec![]), "{}", e.name);
    }
}

#[tokio::test]
async fn waiting_tickets_are_counted_per_priority_up_to_and_including_the_bound() {
    for e in engines::engines().await {
        let s = &e.store;
        with_clinics(s).await;
        tickets(
            s,
            &[
                ("n1", Priority::Normal, 10),
                ("n2", Priority::Normal, 20),
                ("n3", Priority::Normal, 30),
                ("n_called", Priority::Normal, 5),
                ("u1", Priority::Urgent, 10),
            ],
        )
        .await;
        set(s, "n_called", TicketStatus::Called, None, 40).await;
        s.write(|w| issue(w, "other", "cln_2", DAY, Priority::Normal, 1))
            .await
            .unwrap();
        let count = |p: Priority, bound: Option<i64>| {
            s.read(move |r| queue::count_waiting(r, "cln_1", DAY, p, bound))
        };
        assert_eq!(count(Priority::Normal, None).await, Ok(3), "{}", e.name);
        assert_eq!(count(Priority::Normal, Some(20)).await, Ok(2), "{}", e.name);
        assert_eq!(count(Priority::Normal, Some(19)).await, Ok(1), "{}", e.name);
        assert_eq!(count(Priority::Normal, Some(9)).await, Ok(0), "{}", e.name);
        assert_eq!(count(Priority::Urgent, None).await, Ok(1), "{}", e.name);
        assert_eq!(count(Priority::Emergency, None).await, Ok(0), "{}", e.name);
    }
}

#[tokio::test]
async fn open_tickets_are_the_waiting_and_called_ones_of_the_day_in_issue_order() {
    for e in engines::engines().await {
        let s = &e.store;
        with_clinics(s).await;
        tickets(
            s,
            &[
                ("late", Priority::Emergency, 50),
                ("called", Priority::Normal, 10),
                ("served", Priority::Normal, 5),
                ("cancelled", Priority::Normal, 6),
                ("early", Priority::Normal, 20),
            ],
        )
        .await;
        set(s, "called", TicketStatus::Called, Some("2"), 60).await;
        set(s, "served", TicketStatus::Called, Some("1"), 61).await;
        set(s, "served", TicketStatus::Served, None, 62).await;
        set(s, "cancelled", TicketStatus::Cancelled, None, 63).await;
        let open = s
            .read(|r| queue::open_tickets(r, "cln_1", DAY))
            .await
            .unwrap();
        assert_eq!(ids(&open), ["called", "early", "late"], "{}", e.name);
    }
}

#[tokio::test]
async fn a_status_change_applies_only_at_its_version_and_stamps_the_call_the_finish_and_the_recall()
{
    for e in engines::engines().await {
        let s = &e.store;
        with_clinics(s).await;
        tickets(s, &[("t1", Priority::Normal, 100)]).await;
        let stale = s
            .write(|w| queue::set_ticket_status(w, "t1", 2, TicketStatus::Called, None, 1, NOW))
            .await;
        assert_eq!(
            stale,
            Ok(false),
            "{}: a stale version changes nothing",
            e.name
        );

        set(s, "t1", TicketStatus::Called, Some("3"), 200).await;
        let t = find(s, "t1").await;
        assert_eq!(
            (
                t.status,
                t.counter.as_deref(),
                t.called_ms,
                t.finished_ms,
                t.version
            ),
            (TicketStatus::Called, Some("3"), Some(200), None, 2),
            "{}",
            e.name
        );

        // No counter given keeps the one it has.
        set(s, "t1", TicketStatus::NoShow, None, 300).await;
        let t = find(s, "t1").await;
        assert_eq!(
            (
                t.status,
                t.counter.as_deref(),
                t.called_ms,
                t.finished_ms,
                t.recalled
            ),
            (TicketStatus::NoShow, Some("3"), Some(200), Some(300), false),
            "{}",
            e.name
        );

        // The recall: waiting again, re-issued now, its finish cleared, the recall used up.
        set(s, "t1", TicketStatus::Waiting, None, 400).await;
        let t = find(s, "t1").await;
        assert_eq!(
            (
                t.status,
                t.issued_ms,
                t.finished_ms,
                t.recalled,
                t.called_ms
            ),
            (TicketStatus::Waiting, 400, None, true, Some(200)),
            "{}",
            e.name
        );

        // Called again, then cancelled: the issue time stays, the finish is stamped.
        set(s, "t1", TicketStatus::Called, Some("4"), 500).await;
        set(s, "t1", TicketStatus::Cancelled, None, 600).await;
        let t = find(s, "t1").await;
        assert_eq!(
            (
                t.status,
                t.issued_ms,
                t.called_ms,
                t.finished_ms,
                t.counter.as_deref()
            ),
            (
                TicketStatus::Cancelled,
                400,
                Some(500),
                Some(600),
                Some("4")
            ),
            "{}",
            e.name
        );
        assert_eq!(t.version, 6, "{}", e.name);
    }
}

#[tokio::test]
async fn the_last_called_ticket_is_the_latest_call_of_that_day() {
    for e in engines::engines().await {
        let s = &e.store;
        with_clinics(s).await;
        let last = || s.read(|r| queue::last_called(r, "cln_1", DAY));
        assert_eq!(last().await, Ok(None), "{}", e.name);
        tickets(
            s,
            &[
                ("a", Priority::Normal, 1),
                ("b", Priority::Normal, 2),
                ("c", Priority::Normal, 3),
            ],
        )
        .await;
        set(s, "b", TicketStatus::Called, None, 20).await;
        set(s, "a", TicketStatus::Called, None, 10).await;
        s.write(|w| {
            let seq = issue(w, "next_day", "cln_1", "2030-03-02", Priority::Normal, 4)?;
            queue::set_ticket_status(w, "next_day", 1, TicketStatus::Called, None, 99, NOW)?;
            Ok::<_, StoreError>(seq)
        })
        .await
        .unwrap();
        assert_eq!(last().await, Ok(Some("b".to_string())), "{}", e.name);
        // Served after its call, it still was the last one called.
        set(s, "b", TicketStatus::Served, None, 30).await;
        assert_eq!(last().await, Ok(Some("b".to_string())), "{}", e.name);
    }
}

#[tokio::test]
async fn service_time_is_the_mean_of_the_clinics_last_twenty_served_tickets_and_none_without_any() {
    for e in engines::engines().await {
        let s = &e.store;
        with_clinics(s).await;
        let mean = || s.read(|r| queue::service_seconds(r, "cln_1"));
        assert_eq!(mean().await, Ok(None), "{}", e.name);
        // The oldest of 21 served tickets took an hour; the 20 after it took 2 to 4 minutes.
        s.write(|w| {
            for i in 0..21_i64 {
                let id = format!("t{i}");
                // Half of them on another day: the mean is the clinic's, not a day's.
                let day = if i % 2 == 0 { DAY } else { "2030-02-28" };
                issue(w, &id, "cln_1", day, Priority::Normal, i)?;
                let (called, took) = match i {
                    0 => (0, 60 * MIN),
                    _ => (i * 100 * MIN, (2 + i % 3) * MIN),
                };
                queue::set_ticket_status(w, &id, 1, TicketStatus::Called, None, called, NOW)?;
                let finished = called + took;
                queue::set_ticket_status(w, &id, 2, TicketStatus::Served, None, finished, NOW)?;
            }
            // Called long ago and cancelled: not served, so not counted.
            issue(w, "x", "cln_1", DAY, Priority::Normal, 0)?;
            queue::set_ticket_status(w, "x", 1, TicketStatus::Called, None, 0, NOW)?;
            queue::set_ticket_status(w, "x", 2, TicketStatus::Cancelled, None, 9_999 * MIN, NOW)?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
        // i = 1..=20: i % 3 gives 1, 2, 0 …: seven 3s, seven 4s, six 2s, 61 minutes over 20.
        let want = (7.0 * 3.0 + 7.0 * 4.0 + 6.0 * 2.0) * 60.0 / 20.0;
        let got = mean().await.unwrap().unwrap();
        assert!((got - want).abs() < 1e-9, "{}: {got} != {want}", e.name);
        assert_eq!(
            s.read(|r| queue::service_seconds(r, "cln_2")).await,
            Ok(None),
            "{}",
            e.name
        );
    }
}

#[tokio::test]
async fn a_days_report_reads_each_tickets_status_and_its_wait_in_seconds() {
    for e in engines::engines().await {
        let s = &e.store;
        with_clinics(s).await;
        tickets(
            s,
            &[
                ("served", Priority::Normal, 1_000),
                ("waiting", Priority::Normal, 2_000),
            ],
        )
        .await;
        set(s, "served", TicketStatus::Called, None, 3_500).await;
        set(s, "served", TicketStatus::Served, None, 9_000).await;
        s.write(|w| issue(w, "other", "cln_1", "2030-03-02", Priority::Normal, 0))
            .await
            .unwrap();
        let mut rows = s
            .read(|r| queue::day_tickets(r, "cln_1", DAY))
            .await
            .unwrap();
        rows.sort_by_key(|t| t.status.as_str());
        let got: Vec<_> = rows.iter().map(|t| (t.status, t.wait_seconds)).collect();
        assert_eq!(
            got,
            [
                (TicketStatus::Served, Some(2.5)),
                (TicketStatus::Waiting, None)
            ],
            "{}",
            e.name
        );
    }
}

#[tokio::test]
async fn counters_calling_at_once_each_call_a_different_ticket() {
    for e in engines::engines().await {
        with_clinics(&e.store).await;
        e.store
            .write(|w| {
                for i in 0..10_i64 {
                    issue(w, &format!("t{i}"), "cln_1", DAY, Priority::Normal, i)?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        // Each unit calls the earliest head; a second caller that read the same head would
        // find its version moved on, and fail.
        let units: Vec<_> = (0..10)
            .map(|_| {
                let s = e.store.clone();
                tokio::spawn(async move {
                    s.write(|w| {
                        let heads = queue::head_of_each_priority(w, "cln_1", DAY)?;
                        let first = heads.into_iter().min_by_key(|t| t.issued_ms).unwrap();
                        let called = queue::set_ticket_status(
                            w,
                            &first.id,
                            first.version,
                            TicketStatus::Called,
                            None,
                            1_000,
                            NOW,
                        )?;
                        if called {
                            Ok(first.id)
                        } else {
                            Err(StoreError::Conflict)
                        }
                    })
                    .await
                })
            })
            .collect();
        let mut called = Vec::new();
        for u in units {
            called.push(u.await.unwrap().unwrap());
        }
        called.sort_by_key(|id| id[1..].parse::<u32>().unwrap());
        let want: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
        assert_eq!(called, want, "{}", e.name);
    }
}

#[tokio::test]
async fn the_kept_waiting_counts_agree_with_counting_the_queue_through_every_move() {
    for e in engines::engines().await {
        let s = &e.store;
        with_clinics(s).await;
        tickets(
            s,
            &[
                ("a", Priority::Normal, 10),
                ("b", Priority::Normal, 20),
                ("c", Priority::Normal, 30),
                ("d", Priority::Urgent, 15),
                ("e", Priority::Emergency, 25),
            ],
        )
        .await;
        s.write(|w| issue(w, "elsewhere", "cln_2", DAY, Priority::Normal, 1))
            .await
            .unwrap();
        let agree = |step: &'static str| async move {
            for p in Priority::ALL {
                for bound in [
                    None,
                    Some(0),
                    Some(10),
                    Some(19),
                    Some(20),
                    Some(29),
                    Some(99),
                ] {
                    let (kept, counted) = s
                        .read(move |r| {
                            Ok::<_, StoreError>((
                                queue::waiting(r, "cln_1", DAY, p, bound)?,
                                queue::count_waiting(r, "cln_1", DAY, p, bound)?,
                            ))
                        })
                        .await
                        .unwrap();
                    assert_eq!(kept, counted, "{} after {step}: {p:?} {bound:?}", e.name);
                }
            }
        };
        agree("issuing").await;
        assert_eq!(
            s.read(|r| queue::waiting(r, "cln_1", DAY, Priority::Normal, None))
                .await,
            Ok(3),
            "{}",
            e.name
        );
        set(s, "a", TicketStatus::Called, Some("1"), 40).await;
        agree("calling one").await;
        set(s, "a", TicketStatus::Waiting, None, 41).await;
        agree("sending it back").await;
        set(s, "b", TicketStatus::Cancelled, None, 42).await;
        set(s, "e", TicketStatus::Called, None, 43).await;
        set(s, "e", TicketStatus::Served, None, 44).await;
        agree("cancelling and serving").await;
        assert_eq!(
            s.read(|r| queue::waiting(r, "cln_1", DAY, Priority::Normal, Some(15)))
                .await,
            Ok(1),
            "{}",
            e.name
        );
        assert_eq!(
            s.read(|r| queue::waiting(r, "cln_2", DAY, Priority::Normal, None))
                .await,
            Ok(1),
            "{}",
            e.name
        );
    }
}

#[tokio::test]
async fn a_bulk_load_takes_its_numbers_at_once_and_the_next_ticket_continues_after_them() {
    for e in engines::engines().await {
        let s = &e.store;
        with_clinics(s).await;
        let last = s
            .write(|w| queue::take_ticket_seqs(w, "cln_1", DAY, 1_200))
            .await
            .unwrap();
        assert_eq!(last, Some(1_200), "{}", e.name);
        let all: Vec<queue::WaitingTicket> = (1..=1_200)
            .map(|seq| queue::WaitingTicket {
                id: format!("tkt_{seq}"),
                seq,
                number: format!("A-{seq:03}"),
                patient_id: None,
                issued_ms: seq,
            })
            .collect();
        s.write(move |w| queue::insert_waiting(w, "cln_1", DAY, NOW, &all))
            .await
            .unwrap();
        assert_eq!(
            s.read(|r| queue::waiting(r, "cln_1", DAY, Priority::Normal, None))
                .await,
            Ok(1_200),
            "{}",
            e.name
        );
        assert_eq!(find(s, "tkt_700").await.number, "A-700", "{}", e.name);
        let next = s.write(|w| issue(w, "after", "cln_1", DAY, Priority::Normal, 2_000));
        assert_eq!(next.await, Ok(1_201), "{}", e.name);
    }
}
