//! Patients through the store's one set of queries, on each engine.
mod engines;

use careq_store::clinics::{self, ClinicFields};
use careq_store::patients::{
    self, Identity, PatientFields, PatientMark, PatientRow, SearchQuery, Sort, ToRekey,
};
use careq_store::{ReadExt, StoreError, Write};

const NOW: &str = "2030-03-01T08:00:00.000Z";
const LATER: &str = "2030-03-01T09:00:00.000Z";

/// A patient as the tests write it, with keys made by a stand-in for the app's folding
/// (lower case, letters and digits only).
#[derive(Clone)]
struct P {
    id: &'static str,
    clinic: &'static str,
    mrn: &'static str,
    given: &'static str,
    family: &'static str,
    dob: &'static str,
    phone: Option<&'static str>,
    created: &'static str,
}

fn key(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

struct Keys {
    given: String,
    family: String,
    sort: String,
}

impl P {
    fn keys(&self) -> Keys {
        let (given, family) = (key(self.given), key(self.family));
        let sort = format!("{family}\u{1f}{given}\u{1f}{}", self.id);
        Keys {
            given,
            family,
            sort,
        }
    }

    fn store(&self, w: &mut dyn Write) -> Result<bool, StoreError> {
        let k = self.keys();
        patients::insert(w, self.id, self.clinic, &fields(self, &k), self.created)
    }
}

fn fields<'a>(p: &'a P, k: &'a Keys) -> PatientFields<'a> {
    PatientFields {
        mrn: p.mrn,
        given_name: p.given,
        family_name: p.family,
        date_of_birth: p.dob,
        sex: "unknown",
        phone: p.phone,
        email: None,
        address: None,
        height_cm: Some(180.5),
        weight_kg: None,
        given_norm: &k.given,
        family_norm: &k.family,
        given_key: &k.given,
        family_key: &k.family,
        sort_key: &k.sort,
    }
}

fn ada() -> P {
    P {
        id: "pat_1",
        clinic: "cln_1",
        mrn: "A-000001",
        given: "Ada",
        family: "Lovelace",
        dob: "1815-12-10",
        phone: Some("+431234"),
        created: NOW,
    }
}

async fn clinics_for(s: &careq_store::Store, ids: &'static [&'static str]) {
    s.write(move |w| {
        for id in ids {
            let c = ClinicFields {
                name: id,
                timezone: "UTC",
                ticket_prefix: "A",
                country: None,
            };
            clinics::insert(w, id, &c, NOW)?;
        }
        Ok::<_, StoreError>(())
    })
    .await
    .unwrap();
}

async fn find(s: &careq_store::Store, id: &'static str) -> Option<PatientRow> {
    s.read(move |r| patients::find(r, id)).await.unwrap()
}

#[tokio::test]
async fn a_patient_is_stored_once_per_id_and_mrn_and_updated_only_live_at_its_version() {
    for e in engines::engines().await {
        let s = &e.store;
        clinics_for(s, &["cln_1", "cln_2"]).await;
        assert_eq!(s.write(|w| ada().store(w)).await, Ok(true), "{}", e.name);
        // The same id, or the same MRN in the clinic, stores nothing and the unit goes on.
        let taken = s
            .write(|w| {
                let id = ada().store(w)?;
                let mrn = P {
                    id: "pat_2",
                    ..ada()
                }
                .store(w)?;
                let other_clinic = P {
                    id: "pat_3",
                    clinic: "cln_2",
                    ..ada()
                }
                .store(w)?;
                Ok::<_, StoreError>((id, mrn, other_clinic))
            })
            .await;
        assert_eq!(taken, Ok((false, false, true)), "{}", e.name);

        let found = find(s, "pat_1").await.unwrap();
        assert_eq!(
            (
                found.given_name.as_str(),
                found.version,
                found.created_at.as_str()
            ),
            ("Ada", 1, NOW),
            "{}",
            e.name
        );
        assert_eq!(found.height_cm, Some(180.5));
        assert_eq!(
            (found.weight_kg, found.email, found.deleted_at),
            (None, None, None)
        );
        assert_eq!(find(s, "pat_x").await, None, "{}", e.name);

        let update = |version: i64| {
            s.write(move |w| {
                let p = P {
                    given: "Augusta",
                    ..ada()
                };
                let k = p.keys();
                patients::update(w, "pat_1", version, &fields(&p, &k), LATER)
            })
        };
        assert_eq!(update(2).await, Ok(false), "{}: a stale version", e.name);
        assert_eq!(update(1).await, Ok(true), "{}", e.name);
        let now = find(s, "pat_1").await.unwrap();
        assert_eq!(
            (
                now.given_name.as_str(),
                now.version,
                now.updated_at.as_str()
            ),
            ("Augusta", 2, LATER),
            "{}",
            e.name
        );
        let deleted = s
            .write(|w| patients::mark(w, "pat_3", PatientMark::Deleted, Some(LATER), LATER))
            .await;
        assert_eq!(deleted, Ok(true));
        let p3 = s
            .write(|w| {
                let p = P {
                    id: "pat_3",
                    clinic: "cln_2",
                    ..ada()
                };
                let k = p.keys();
                patients::update(w, "pat_3", 2, &fields(&p, &k), LATER)
            })
            .await;
        assert_eq!(
            p3,
            Ok(false),
            "{}: a deleted patient is not updated",
            e.name
        );
    }
}

#[tokio::test]
async fn an_mrn_belongs_to_its_clinic_and_the_counter_skips_one_typed_by_hand() {
    for e in engines::engines().await {
        let s = &e.store;
        clinics_for(s, &["cln_1", "cln_2"]).await;
        // A patient typed in with the MRN the counter would give second.
        s.write(|w| {
            P {
                mrn: "A-000002",
                ..ada()
            }
            .store(w)
        })
        .await
        .unwrap();
        let by_mrn =
            |clinic: &'static str| s.read(move |r| patients::id_by_mrn(r, clinic, "A-000002"));
        assert_eq!(
            by_mrn("cln_1").await,
            Ok(Some("pat_1".into())),
            "{}",
            e.name
        );
        assert_eq!(by_mrn("cln_2").await, Ok(None), "{}", e.name);

        let next = |clinic: &'static str| {
            s.write(move |w| patients::next_mrn(w, clinic, &|n| format!("A-{n:06}")))
        };
        assert_eq!(next("cln_1").await, Ok("A-000001".into()), "{}", e.name);
        assert_eq!(next("cln_1").await, Ok("A-000003".into()), "{}", e.name);
        assert_eq!(next("cln_2").await, Ok("A-000001".into()), "{}", e.name);
    }
}

#[tokio::test]
async fn the_same_person_is_a_live_namesake_of_the_clinic_born_the_same_day_and_not_the_excepted_one(
) {
    for e in engines::engines().await {
        let s = &e.store;
        clinics_for(s, &["cln_1", "cln_2"]).await;
        s.write(|w| {
            ada().store(w)?;
            for (id, mrn) in [("pat_del", "D"), ("pat_mrg", "M")] {
                P { id, mrn, ..ada() }.store(w)?;
            }
            P {
                id: "pat_other",
                clinic: "cln_2",
                ..ada()
            }
            .store(w)?;
            patients::mark(w, "pat_del", PatientMark::Deleted, Some(NOW), NOW)?;
            patients::mark(w, "pat_mrg", PatientMark::Merged, Some("pat_1"), NOW)?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
        let who = |dob: &'static str| Identity {
            clinic_id: "cln_1",
            family_norm: "lovelace",
            given_norm: "ada",
            date_of_birth: dob,
        };
        let read = |dob, except: &'static str| {
            s.read(move |r| patients::same_person(r, &who(dob), except))
        };
        assert_eq!(
            read("1815-12-10", "").await,
            Ok(Some("pat_1".into())),
            "{}",
            e.name
        );
        assert_eq!(read("1815-12-11", "").await, Ok(None), "{}", e.name);
        // The patient being updated is not their own duplicate; deleted and merged ones and
        // the other clinic's never are.
        assert_eq!(read("1815-12-10", "pat_1").await, Ok(None), "{}", e.name);
        let held = s
            .write(move |w| patients::same_person_held(w, &who("1815-12-10"), ""))
            .await;
        assert_eq!(held, Ok(Some("pat_1".into())), "{}", e.name);
    }
}

#[tokio::test]
async fn each_mark_sets_its_column_and_bumps_the_version() {
    for e in engines::engines().await {
        let s = &e.store;
        clinics_for(s, &["cln_1"]).await;
        s.write(|w| ada().store(w)).await.unwrap();
        let mark = |m, value: Option<&'static str>| {
            s.write(move |w| patients::mark(w, "pat_1", m, value, LATER))
        };
        assert_eq!(
            mark(PatientMark::Sealed, Some("court order")).await,
            Ok(true)
        );
        let p = find(s, "pat_1").await.unwrap();
        assert_eq!(
            (p.sealed_at.as_deref(), p.version),
            (Some(LATER), 2),
            "{}",
            e.name
        );
        let reason = || {
            s.read(|r| {
                r.first(
                    "SELECT sealed_reason FROM patients WHERE id = 'pat_1'",
                    &[],
                    |row| row.opt_text(0),
                )
            })
        };
        assert_eq!(reason().await, Ok(Some(Some("court order".into()))));
        assert_eq!(mark(PatientMark::Unsealed, Some("lifted")).await, Ok(true));
        let p = find(s, "pat_1").await.unwrap();
        assert_eq!((p.sealed_at, p.version), (None, 3), "{}", e.name);
        assert_eq!(reason().await, Ok(Some(Some("lifted".into()))));
        assert_eq!(mark(PatientMark::Deleted, Some(NOW)).await, Ok(true));
        let p = find(s, "pat_1").await.unwrap();
        assert_eq!((p.deleted_at.as_deref(), p.version), (Some(NOW), 4));
        assert_eq!(p.updated_at, LATER);
        let none = s
            .write(|w| patients::mark(w, "pat_x", PatientMark::Merged, Some("pat_1"), NOW))
            .await;
        assert_eq!(none, Ok(false), "{}: no such patient", e.name);
    }
}

#[tokio::test]
async fn a_merged_patients_appointments_and_tickets_move_to_the_survivor() {
    for e in engines::engines().await {
        let s = &e.store;
        clinics_for(s, &["cln_1"]).await;
        s.write(|w| {
            for (id, mrn) in [("pat_1", "1"), ("pat_2", "2"), ("pat_3", "3")] {
                P { id, mrn, ..ada() }.store(w)?;
            }
            w.execute(
                "INSERT INTO users (id, username, password_hash, role, created_at, updated_at)
                 VALUES ('usr_1', 'ann', 'x', 'clinician', $1, $1)",
                &[NOW.into()],
            )?;
            for (id, patient) in [("apt_1", "pat_2"), ("apt_2", "pat_3")] {
                w.execute(
                    "INSERT INTO appointments (id, clinic_id, patient_id, clinician_id, start_at,
                         start_unix, end_unix, duration_minutes, status, created_at, updated_at)
                     VALUES ($1, 'cln_1', $2, 'usr_1', $3, 0, 600, 10, 'booked', $3, $3)",
                    &[id.into(), patient.into(), NOW.into()],
                )?;
            }
            w.execute(
                "INSERT INTO tickets (id, clinic_id, day, seq, number, patient_id, priority,
                     status, issued_ms, created_at, updated_at)
                 VALUES ('tkt_1', 'cln_1', '2030-03-01', 1, 'A1', 'pat_2', 'normal', 'waiting',
                     0, $1, $1)",
                &[NOW.into()],
            )?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
        let moved = s
            .write(|w| patients::move_records(w, "pat_2", "pat_1"))
            .await;
        assert_eq!(moved, Ok(2), "{}", e.name);
        let owners = s
            .read(|r| {
                r.all(
                    "SELECT id, patient_id, version FROM appointments
                     UNION ALL SELECT id, patient_id, version FROM tickets ORDER BY 1",
                    &[],
                    |row| Ok((row.text(0)?, row.text(1)?, row.int(2)?)),
                )
            })
            .await
            .unwrap();
        let want = [
            ("apt_1", "pat_1", 2),
            ("apt_2", "pat_3", 1),
            ("tkt_1", "pat_1", 2),
        ];
        let got: Vec<_> = owners
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), *c))
            .collect();
        assert_eq!(got, want, "{}", e.name);
    }
}

#[tokio::test]
async fn start_up_lists_rows_to_key_and_each_keyed_row_leaves_the_list() {
    for e in engines::engines().await {
        let s = &e.store;
        clinics_for(s, &["cln_1"]).await;
        s.write(|w| {
            ada().store(w)?;
            P {
                id: "pat_2",
                mrn: "2",
                ..ada()
            }
            .store(w)?;
            // As migration 0014 left rows stored before it, and 0017 listed them.
            w.execute(
                "UPDATE patients SET given_key = NULL WHERE id = 'pat_2'",
                &[],
            )?;
            w.execute(
                "INSERT INTO patients_rekey (id) VALUES ('pat_1'), ('pat_gone')",
                &[],
            )?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
        let unkeyed = s
            .read(|r| patients::without_search_keys(r, 10))
            .await
            .unwrap();
        let ids: Vec<_> = unkeyed.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["pat_2"], "{}", e.name);
        assert_eq!(unkeyed[0].given_name, "Ada");
        let set = s
            .write(|w| {
                patients::set_search_keys(
                    w,
                    "pat_2",
                    "ada",
                    "lovelace",
                    "lovelace\u{1f}ada\u{1f}pat_2",
                )
            })
            .await;
        assert_eq!(set, Ok(true));
        assert_eq!(
            s.read(|r| patients::without_search_keys(r, 10)).await,
            Ok(vec![])
        );

        // One per batch: the limit holds, in id order.
        let first = s.read(|r| patients::to_rekey(r, 1)).await.unwrap();
        let want = ToRekey {
            id: "pat_1".into(),
            names: Some(("Ada".into(), "Lovelace".into())),
        };
        assert_eq!(first, [want], "{}", e.name);
        s.write(|w| patients::rekey(w, "pat_1", Some(("ad4", "l0velace"))))
            .await
            .unwrap();
        let gone = s.read(|r| patients::to_rekey(r, 10)).await.unwrap();
        let want = ToRekey {
            id: "pat_gone".into(),
            names: None,
        };
        assert_eq!(gone, [want], "{}: a patient no longer there", e.name);
        s.write(|w| patients::rekey(w, "pat_gone", None))
            .await
            .unwrap();
        assert_eq!(s.read(|r| patients::to_rekey(r, 10)).await, Ok(vec![]));
        let norms = s
            .read(|r| {
                r.first(
                    "SELECT given_norm, family_norm FROM patients WHERE id = 'pat_1'",
                    &[],
                    |row| Ok((row.text(0)?, row.text(1)?)),
                )
            })
            .await;
        assert_eq!(
            norms,
            Ok(Some(("ad4".into(), "l0velace".into()))),
            "{}",
            e.name
        );
    }
}
