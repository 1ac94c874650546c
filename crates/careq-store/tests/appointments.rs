//! Appointments through the store's one set of queries, on each engine.
mod engines;

use careq_store::appointments::{
    self, AppointmentChange, AppointmentRow, AppointmentStatus, DayRange, ListFilter,
    NewAppointment, Overlap, Slot,
};
use careq_store::clinics::{self, ClinicFields};
use careq_store::queue::{self, NewTicket, Priority};
use careq_store::{Store, StoreError, Write};

const NOW: &str = "2030-03-01T08:00:00.000Z";
const LATER: &str = "2030-03-01T09:00:00.000Z";
/// 2030-03-17T17:46:40Z, a start the tests move around in.
const T: i64 = 1_900_000_000;
const MIN: i64 = 60;

/// Two clinics, clinicians `usr_a` and `usr_b`, a member `usr_m` of cln_1 only, and patients:
/// `pat_1` and the sealed `pat_s` in cln_1, `pat_2` in cln_2.
async fn people(s: &Store) {
    s.write(|w| {
        let zone = |timezone| ClinicFields {
            name: "Clinic",
            timezone,
            ticket_prefix: "A",
            country: None,
        };
        clinics::insert(w, "cln_1", &zone("Europe/Vienna"), NOW)?;
        clinics::insert(w, "cln_2", &zone("America/Chicago"), NOW)?;
        for (id, name) in [("usr_a", "ann"), ("usr_b", "bob"), ("usr_m", "meg")] {
            w.execute(
                "INSERT INTO users (id, username, password_hash, role, created_at, updated_at)
                 VALUES ($1, $2, 'x', 'clinician', $3, $3)",
                &[id.into(), name.into(), NOW.into()],
            )?;
        }
        w.execute(
            "INSERT INTO user_clinics (user_id, clinic_id) VALUES ('usr_m', 'cln_1')",
            &[],
        )?;
        for (id, clinic, sealed) in [
            ("pat_1", "cln_1", None),
            ("pat_s", "cln_1", Some(NOW)),
            ("pat_2", "cln_2", None),
        ] {
            w.execute(
                "INSERT INTO patients (id, clinic_id, mrn, given_name, family_name, date_of_birth,
                     sex, given_norm, family_norm, sort_key, created_at, updated_at, sealed_at)
                 VALUES ($1, $2, $1, 'Ann', 'Lee', '1980-01-01', 'female', 'ann', 'lee', $1,
                     $3, $3, $4)",
                &[id.into(), clinic.into(), NOW.into(), sealed.into()],
            )?;
        }
        Ok::<_, StoreError>(())
    })
    .await
    .unwrap();
}

fn slot(start_unix: i64, minutes: i64) -> Slot<'static> {
    Slot {
        start_at: "2030-03-17T17:46:40Z",
        start_unix,
        end_unix: start_unix + minutes * MIN,
        minutes,
    }
}

fn new<'a>(
    id: &'a str,
    clinic: &'a str,
    patient: &'a str,
    clinician: &'a str,
) -> NewAppointment<'a> {
    NewAppointment {
        id,
        clinic_id: clinic,
        patient_id: patient,
        clinician_id: clinician,
        slot: slot(T, 30),
        reason: None,
    }
}

/// Books each appointment as given.
async fn book(s: &Store, list: Vec<NewAppointment<'static>>) {
    s.write(move |w| {
        for a in &list {
            appointments::insert(w, a, NOW)?;
        }
        Ok::<_, StoreError>(())
    })
    .await
    .unwrap();
}

async fn find(s: &Store, id: &'static str) -> AppointmentRow {
    s.read(move |r| appointments::find(r, id))
        .await
        .unwrap()
        .unwrap()
}

/// Moves an appointment to `status`, slot and reason as they are.
async fn set_status(s: &Store, id: &'static str, status: AppointmentStatus) {
    let a = find(s, id).await;
    let done = s
        .write(move |w| {
            let change = AppointmentChange {
                slot: Slot {
                    start_at: &a.start_at,
                    start_unix: a.start_unix,
                    end_unix: a.start_unix + a.duration_minutes * MIN,
                    minutes: a.duration_minutes,
                },
                reason: a.reason.as_deref(),
                status,
                ticket_id: None,
            };
            appointments::update(w, id, a.version, &change, LATER)
        })
        .await;
    assert_eq!(done, Ok(true), "{id} to {status:?}");
}

fn ids(v: &[AppointmentRow]) -> Vec<&str> {
    v.iter().map(|a| a.id.as_str()).collect()
}

fn overlap(w: &mut dyn Write, clinician: &str, s: Slot<'_>, except: &str) -> Option<String> {
    appointments::overlapping(w, clinician, &s, except)
        .unwrap()
        .map(|o| o.id)
}

#[tokio::test]
async fn an_appointment_is_stored_booked_found_with_its_clinics_zone_and_updated_only_at_its_version(
) {
    for e in engines::engines().await {
        let s = &e.store;
        people(s).await;
        book(
            s,
            vec![NewAppointment {
                reason: Some("check-up"),
                ..new("apt_1", "cln_1", "pat_1", "usr_a")
            }],
        )
        .await;
        let a = find(s, "apt_1").await;
        let want = AppointmentRow {
            id: "apt_1".into(),
            clinic_id: "cln_1".into(),
            patient_id: "pat_1".into(),
            clinician_id: "usr_a".into(),
            start_at: "2030-03-17T17:46:40Z".into(),
            start_unix: T,
            duration_minutes: 30,
            reason: Some("check-up".into()),
            status: AppointmentStatus::Booked,
            ticket_id: None,
            version: 1,
            created_at: NOW.into(),
            updated_at: NOW.into(),
            deleted_at: None,
            timezone: Some("Europe/Vienna".into()),
        };
        assert_eq!(a, want, "{}", e.name);
        assert_eq!(s.read(|r| appointments::find(r, "apt_x")).await, Ok(None));

        let moved = AppointmentChange {
            slot: Slot {
                start_at: "2030-03-17T18:46:40Z",
                ..slot(T + 60 * MIN, 45)
            },
            reason: None,
            status: AppointmentStatus::CheckedIn,
            ticket_id: Some("tkt_1"),
        };
        let stale = s
            .write(move |w| appointments::update(w, "apt_1", 2, &moved, LATER))
            .await;
        assert_eq!(
            stale,
            Ok(false),
            "{}: a stale version changes nothing",
            e.name
        );
        let done = s
            .write(move |w| {
                let t = NewTicket {
                    id: "tkt_1",
                    clinic_id: "cln_1",
                    day: "2030-03-17",
                    seq: queue::next_ticket_seq(w, "cln_1", "2030-03-17")?.unwrap(),
                    number: "A-001",
                    patient_id: Some("pat_1"),
                    priority: Priority::Normal,
                };
                queue::insert_ticket(w, &t, 0, NOW)?;
                appointments::update(w, "apt_1", 1, &moved, LATER)
            })
            .await;
        assert_eq!(done, Ok(true), "{}", e.name);
        let a = find(s, "apt_1").await;
        assert_eq!(
            (
                a.start_at.as_str(),
                a.start_unix,
                a.duration_minutes,
                a.reason,
                a.status,
                a.ticket_id.as_deref(),
                a.version,
                a.updated_at.as_str()
            ),
            (
                "2030-03-17T18:46:40Z",
                T + 60 * MIN,
                45,
                None,
                AppointmentStatus::CheckedIn,
                Some("tkt_1"),
                2,
                LATER
            ),
            "{}",
            e.name
        );
        // No ticket given keeps the one it has; the new end counts for overlaps.
        set_status(s, "apt_1", AppointmentStatus::Completed).await;
        let a = find(s, "apt_1").await;
        assert_eq!(
            (a.status, a.ticket_id.as_deref(), a.version),
            (AppointmentStatus::Completed, Some("tkt_1"), 3),
            "{}",
            e.name
        );
    }
}

#[tokio::test]
async fn a_deleted_appointment_is_still_found_marked_deleted_and_changes_no_more() {
    for e in engines::engines().await {
        let s = &e.store;
        people(s).await;
        book(s, vec![new("apt_1", "cln_1", "pat_1", "usr_a")]).await;
        let gone = s.write(|w| appointments::delete(w, "apt_1", LATER)).await;
        assert_eq!(gone, Ok(true), "{}", e.name);
        let a = find(s, "apt_1").await;
        assert_eq!(
            (a.deleted_at.as_deref(), a.version, a.updated_at.as_str()),
            (Some(LATER), 2, LATER),
            "{}",
            e.name
        );
        let again = s.write(|w| appointments::delete(w, "apt_1", NOW)).await;
        assert_eq!(again, Ok(false), "{}: deleted once only", e.name);
        let change = AppointmentChange {
            slot: slot(T, 30),
            reason: None,
            status: AppointmentStatus::Booked,
            ticket_id: None,
        };
        let update = s
            .write(move |w| appointments::update(w, "apt_1", 2, &change, NOW))
            .await;
        assert_eq!(update, Ok(false), "{}: at its version, but deleted", e.name);
        assert_eq!(find(s, "apt_1").await.deleted_at.as_deref(), Some(LATER));
        let none = s.write(|w| appointments::delete(w, "apt_x", NOW)).await;
        assert_eq!(none, Ok(false), "{}", e.name);
    }
}

#[tokio::test]
async fn an_overlap_is_a_live_booked_or_checked_in_slot_of_the_same_clinician_that_truly_overlaps()
{
    for e in engines::engines().await {
        let s = &e.store;
        people(s).await;
        // apt_1: usr_a over [T, T+30m). The others start a day apart each, one state each.
        let day = 24 * 60 * MIN;
        let at = |n: i64, a: NewAppointment<'static>| NewAppointment {
            slot: slot(T + n * day, 30),
            ..a
        };
        book(
            s,
            vec![
                new("apt_1", "cln_1", "pat_1", "usr_a"),
                at(1, new("cancelled", "cln_1", "pat_1", "usr_a")),
                at(2, new("checked_in", "cln_2", "pat_2", "usr_a")),
                at(3, new("deleted", "cln_1", "pat_1", "usr_a")),
                at(4, new("completed", "cln_1", "pat_1", "usr_a")),
                at(5, new("no_show", "cln_1", "pat_1", "usr_a")),
            ],
        )
        .await;
        set_status(s, "cancelled", AppointmentStatus::Cancelled).await;
        set_status(s, "checked_in", AppointmentStatus::CheckedIn).await;
        set_status(s, "completed", AppointmentStatus::Completed).await;
        set_status(s, "no_show", AppointmentStatus::NoShow).await;
        s.write(|w| appointments::delete(w, "deleted", NOW))
            .await
            .unwrap();

        let found = s
            .write(move |w| {
                Ok::<_, StoreError>(vec![
                    // Touching ends do not overlap; a minute in does, from either side.
                    overlap(w, "usr_a", slot(T + 30 * MIN, 30), ""),
                    overlap(w, "usr_a", slot(T - 30 * MIN, 30), ""),
                    overlap(w, "usr_a", slot(T + 29 * MIN, 30), ""),
                    overlap(w, "usr_a", slot(T - 29 * MIN, 30), ""),
                    overlap(w, "usr_a", slot(T + 10 * MIN, 5), ""),
                    overlap(w, "usr_a", slot(T - 60 * MIN, 120), ""),
                    // Its own slot, when rescheduling it.
                    overlap(w, "usr_a", slot(T, 30), "apt_1"),
                    // Another clinician's.
                    overlap(w, "usr_b", slot(T, 30), ""),
                    // Only booked and checked in hold a slot, and only while live.
                    overlap(w, "usr_a", slot(T + day, 30), ""),
                    overlap(w, "usr_a", slot(T + 2 * day, 30), ""),
                    overlap(w, "usr_a", slot(T + 3 * day, 30), ""),
                    overlap(w, "usr_a", slot(T + 4 * day, 30), ""),
                    overlap(w, "usr_a", slot(T + 5 * day, 30), ""),
                ])
            })
            .await
            .unwrap();
        let apt = Some("apt_1".to_string());
        let want = vec![
            None,
            None,
            apt.clone(),
            apt.clone(),
            apt.clone(),
            apt,
            None,
            None,
            None,
            Some("checked_in".to_string()),
            None,
            None,
            None,
        ];
        assert_eq!(found, want, "{}", e.name);
        let other = s
            .write(move |w| appointments::overlapping(w, "usr_a", &slot(T + 2 * day, 30), ""))
            .await;
        let want = Overlap {
            id: "checked_in".into(),
            clinic_id: "cln_2".into(),
        };
        assert_eq!(other, Ok(Some(want)), "{}: with its clinic", e.name);
    }
}

#[tokio::test]
async fn appointments_page_in_start_then_id_order_after_the_key() {
    for e in engines::engines().await {
        let s = &e.store;
        people(s).await;
        let at = |id, start| NewAppointment {
            slot: slot(start, 30),
            ..new(id, "cln_1", "pat_1", "usr_a")
        };
        book(
            s,
            vec![
                at("c", T),
                at("a", T),
                at("d", T + MIN),
                at("b", T),
                at("z", T - MIN),
                at("gone", T),
            ],
        )
        .await;
        s.write(|w| appointments::delete(w, "gone", NOW))
            .await
            .unwrap();
        let page = |after: (i64, &'static str), limit| {
            s.read(move |r| appointments::list(r, None, &ListFilter::default(), after, limit))
        };
        // Two per page plus the one that says there is more.
        let first = page((i64::MIN, ""), 2).await.unwrap();
        assert_eq!(ids(&first), ["z", "a", "b"], "{}", e.name);
        let second = page((T, "a"), 2).await.unwrap();
        assert_eq!(ids(&second), ["b", "c", "d"], "{}", e.name);
        let last = page((T, "c"), 2).await.unwrap();
        assert_eq!(ids(&last), ["d"], "{}", e.name);
        let none = page((T + MIN, "d"), 2).await.unwrap();
        assert_eq!(ids(&none), Vec::<&str>::new(), "{}", e.name);
    }
}

#[tokio::test]
async fn filters_narrow_the_list_to_their_clinic_clinician_patient_status_and_day_ranges() {
    for e in engines::engines().await {
        let s = &e.store;
        people(s).await;
        let day = 24 * 60 * MIN;
        book(
            s,
            vec![
                new("a1", "cln_1", "pat_1", "usr_a"),
                NewAppointment {
                    slot: slot(T + day, 30),
                    ..new("a2", "cln_1", "pat_1", "usr_b")
                },
                NewAppointment {
                    slot: slot(T + 2 * day, 30),
                    ..new("b1", "cln_2", "pat_2", "usr_a")
                },
            ],
        )
        .await;
        set_status(s, "a2", AppointmentStatus::Cancelled).await;
        let list = |f: ListFilter<'static>| {
            s.read(move |r| appointments::list(r, None, &f, (i64::MIN, ""), 50))
        };
        let got = |v: Result<Vec<AppointmentRow>, StoreError>| {
            v.unwrap().into_iter().map(|a| a.id).collect::<Vec<_>>()
        };
        let all = ListFilter::default();
        assert_eq!(got(list(all).await), ["a1", "a2", "b1"], "{}", e.name);
        let f = ListFilter {
            clinic_id: Some("cln_1"),
            ..all
        };
        assert_eq!(got(list(f).await), ["a1", "a2"], "{}", e.name);
        let f = ListFilter {
            clinician_id: Some("usr_a"),
            ..all
        };
        assert_eq!(got(list(f).await), ["a1", "b1"], "{}", e.name);
        let f = ListFilter {
            patient_id: Some("pat_2"),
            ..all
        };
        assert_eq!(got(list(f).await), ["b1"], "{}", e.name);
        let f = ListFilter {
            status: Some(AppointmentStatus::Cancelled),
            ..all
        };
        assert_eq!(got(list(f).await), ["a2"], "{}", e.name);
        let f = ListFilter {
            clinic_id: Some("cln_1"),
            clinician_id: Some("usr_a"),
            ..all
        };
        assert_eq!(got(list(f).await), ["a1"], "{}", e.name);

        // Ranges are [from, to): a start at `to` is out, at `from` in. a1 (cln_1, T) is in
        // the second range's time but not its clinics.
        let by_ranges = s
            .read(move |r| {
                let cln_2 = ["cln_2".to_string()];
                let ranges = [
                    DayRange {
                        clinic_ids: None,
                        from: T + day,
                        to: T + 2 * day,
                    },
                    DayRange {
                        clinic_ids: Some(&cln_2),
                        from: T - day,
                        to: T + 3 * day,
                    },
                ];
                let mut out = Vec::new();
                for between in [&ranges[..], &ranges[..1], &[]] {
                    let f = ListFilter {
                        between: Some(between),
                        ..all
                    };
                    let page = appointments::list(r, None, &f, (i64::MIN, ""), 50)?;
                    out.push(page.into_iter().map(|a| a.id).collect::<Vec<_>>());
                }
                Ok::<_, StoreError>(out)
            })
            .await
            .unwrap();
        let want: [&[&str]; 3] = [&["a2", "b1"], &["a2"], &[]];
        assert_eq!(by_ranges, want, "{}", e.name);
    }
}

#[tokio::test]
async fn a_member_sees_only_their_clinics_and_no_sealed_patients_appointments_while_an_admin_sees_all(
) {
    for e in engines::engines().await {
        let s = &e.store;
        people(s).await;
        book(
            s,
            vec![
                new("a1", "cln_1", "pat_1", "usr_a"),
                new("sealed", "cln_1", "pat_s", "usr_b"),
                new("b1", "cln_2", "pat_2", "usr_m"),
            ],
        )
        .await;
        let list = |member: Option<&'static str>| {
            s.read(move |r| {
                appointments::list(r, member, &ListFilter::default(), (i64::MIN, ""), 50)
            })
        };
        let admin = list(None).await.unwrap();
        assert_eq!(ids(&admin), ["a1", "b1", "sealed"], "{}", e.name);
        let member = list(Some("usr_m")).await.unwrap();
        assert_eq!(ids(&member), ["a1"], "{}", e.name);
        let outsider = list(Some("usr_a")).await.unwrap();
        assert_eq!(ids(&outsider), Vec::<&str>::new(), "{}", e.name);
    }
}

#[tokio::test]
async fn two_bookings_of_one_clinician_at_once_cannot_both_pass_the_overlap_check() {
    for e in engines::engines().await {
        people(&e.store).await;
        let units: Vec<_> = (0..29)
            .map(|i| {
                let s = e.store.clone();
                tokio::spawn(async move {
                    s.write(move |w| {
                        // Each a different slot overlapping every other one.
                        let a = NewAppointment {
                            slot: slot(T + i * MIN, 30),
                            ..new("", "cln_1", "pat_1", "usr_a")
                        };
                        if appointments::overlapping(w, "usr_a", &a.slot, "")?.is_some() {
                            return Ok(false);
                        }
                        let id = format!("apt_{i}");
                        appointments::insert(w, &NewAppointment { id: &id, ..a }, NOW)?;
                        Ok::<_, StoreError>(true)
                    })
                    .await
                })
            })
            .collect();
        let mut booked = 0;
        for u in units {
            booked += usize::from(u.await.unwrap().unwrap());
        }
        assert_eq!(booked, 1, "{}", e.name);
        let stored = stored_appointments(&e.store).await;
        assert_eq!(stored, 1, "{}", e.name);
    }
}

async fn stored_appointments(s: &Store) -> i64 {
    s.read(|r| {
        use careq_store::ReadExt;
        r.int("SELECT COUNT(*) FROM appointments", &[])
    })
    .await
    .unwrap()
    .unwrap()
}
