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

/// The search data set: three clinics, names sharing prefixes, equal birth dates, phones and
/// registration times (ties go by id), a name past `z` in code-point order, and one sealed,
/// one deleted and one merged record.
fn people() -> Vec<(P, Option<PatientMark>)> {
    let p = |id, clinic, given, family, dob, phone, created| P {
        id,
        clinic,
        mrn: id,
        given,
        family,
        dob,
        phone,
        created,
    };
    let (t1, t2, t3) = (
        "2030-01-01T00:00:00.000Z",
        "2030-01-02T00:00:00.000Z",
        "2030-01-03T00:00:00.000Z",
    );
    let d = "1980-01-01";
    vec![
        (
            p("pat_01", "cln_1", "Robert", "Smith", d, Some("+4311"), t2),
            None,
        ),
        (
            p(
                "pat_02",
                "cln_1",
                "Roberta",
                "Smithers",
                "1975-05-05",
                None,
                t1,
            ),
            None,
        ),
        (
            p("pat_03", "cln_2", "Rob", "Jones", d, Some("+4311"), t2),
            None,
        ),
        (
            p(
                "pat_04",
                "cln_1",
                "John",
                "Robertson",
                "1990-02-02",
                None,
                t3,
            ),
            None,
        ),
        (p("pat_05", "cln_3", "Robin", "Hood", d, None, t1), None),
        (
            p("pat_06", "cln_1", "Mary", "O'Brien", "1960-06-06", None, t2),
            None,
        ),
        (
            p(
                "pat_07",
                "cln_2",
                "Jo",
                "Smith",
                "1985-03-03",
                Some("+4311"),
                t3,
            ),
            None,
        ),
        (p("pat_08", "cln_1", "Smith", "John", d, None, t1), None),
        (
            p("pat_09", "cln_2", "Hans", "Ørsted", "1777-08-14", None, t2),
            None,
        ),
        (
            p("pat_10", "cln_1", "Robert", "Smith", "1970-07-07", None, t2),
            None,
        ),
        (
            p("pat_11", "cln_1", "Roberto", "Sealed", d, None, t1),
            Some(PatientMark::Sealed),
        ),
        (
            p("pat_12", "cln_2", "Robert", "Gone", d, None, t1),
            Some(PatientMark::Deleted),
        ),
        (
            p("pat_13", "cln_1", "Robert", "Merged", d, None, t3),
            Some(PatientMark::Merged),
        ),
        (
            p("pat_14", "cln_3", "Ada", "Lovelace", "1815-12-10", None, t3),
            None,
        ),
        (p("pat_15", "cln_2", "Roberts", "Adams", d, None, t3), None),
    ]
}

async fn load_people(s: &careq_store::Store) {
    clinics_for(s, &["cln_1", "cln_2", "cln_3"]).await;
    s.write(|w| {
        for (p, mark) in people() {
            p.store(w)?;
            if let Some(m) = mark {
                let value = if m == PatientMark::Merged {
                    "pat_01"
                } else {
                    NOW
                };
                patients::mark(w, p.id, m, Some(value), NOW)?;
            }
        }
        Ok::<_, StoreError>(())
    })
    .await
    .unwrap();
}

/// A search as the tests hold it (owned, so units can take it along).
#[derive(Debug, Clone, Default)]
struct Q {
    name: &'static str,
    words: Vec<String>,
    family: Option<&'static str>,
    given: Option<&'static str>,
    mrn: Option<&'static str>,
    phone: Option<&'static str>,
    email: Option<&'static str>,
    date_of_birth: Option<&'static str>,
    clinic_id: Option<&'static str>,
    sort: Sort,
}

impl Q {
    fn query(&self) -> SearchQuery<'_> {
        SearchQuery {
            words: &self.words,
            family: self.family,
            given: self.given,
            mrn: self.mrn,
            phone: self.phone,
            email: self.email,
            date_of_birth: self.date_of_birth,
            clinic_id: self.clinic_id,
            sort: self.sort,
        }
    }

    /// What the search must find, in order: the rule written out over the data set.
    fn expected(&self, member: Option<&[String]>, after: &str) -> Vec<&'static str> {
        let mut found: Vec<(String, &'static str)> = people()
            .into_iter()
            .filter(|(p, mark)| {
                let k = p.keys();
                let either = |w: &str| k.given.starts_with(w) || k.family.starts_with(w);
                let visible = match member {
                    None => !matches!(mark, Some(PatientMark::Deleted | PatientMark::Merged)),
                    Some(clinics) => mark.is_none() && clinics.iter().any(|c| c == p.clinic),
                };
                visible
                    && self.family.is_none_or(|f| k.sort.starts_with(f))
                    && self.given.is_none_or(|g| k.given.starts_with(g))
                    && self.mrn.is_none_or(|m| m == p.mrn)
                    && self.phone.is_none_or(|ph| Some(ph) == p.phone)
                    // Nobody in the data set has an email address.
                    && self.email.is_none()
                    && self.date_of_birth.is_none_or(|d| d == p.dob)
                    && self.clinic_id.is_none_or(|c| c == p.clinic)
                    && (self.words.iter().all(|w| either(w))
                        || (self.words.len() > 1 && either(&self.words.concat())))
            })
            .map(|(p, _)| {
                let pos = match self.sort {
                    Sort::Name => p.keys().sort,
                    Sort::Created => format!("{}\u{1f}{}", p.created, p.id),
                    Sort::BirthDate => format!("{}\u{1f}{}", p.dob, p.id),
                };
                (pos, p.id)
            })
            .filter(|(pos, _)| pos.as_str() > after)
            .collect();
        found.sort();
        found.into_iter().map(|(_, id)| id).collect()
    }
}

fn words(ws: &[&str]) -> Vec<String> {
    ws.iter().map(|w| w.to_string()).collect()
}

/// Every shape of search: each filter kind alone, names with the other filters, each order.
fn searches() -> Vec<Q> {
    let mut all = Vec::new();
    for sort in [Sort::Name, Sort::Created, Sort::BirthDate] {
        all.extend([
            Q {
                name: "name prefix",
                words: words(&["rob"]),
                sort,
                ..Q::default()
            },
            Q {
                name: "two words, any order",
                words: words(&["smith", "jo"]),
                sort,
                ..Q::default()
            },
            Q {
                name: "words run together",
                words: words(&["o", "brien"]),
                sort,
                ..Q::default()
            },
            Q {
                name: "nothing",
                sort,
                ..Q::default()
            },
            Q {
                name: "date of birth",
                date_of_birth: Some("1980-01-01"),
                sort,
                ..Q::default()
            },
            Q {
                name: "clinic",
                clinic_id: Some("cln_2"),
                sort,
                ..Q::default()
            },
            Q {
                name: "name and date of birth",
                words: words(&["rob"]),
                date_of_birth: Some("1980-01-01"),
                sort,
                ..Q::default()
            },
            Q {
                name: "name and clinic",
                words: words(&["rob"]),
                clinic_id: Some("cln_1"),
                sort,
                ..Q::default()
            },
        ]);
    }
    all.extend([
        Q {
            name: "mrn",
            mrn: Some("pat_03"),
            ..Q::default()
        },
        Q {
            name: "phone",
            phone: Some("+4311"),
            ..Q::default()
        },
        Q {
            name: "email",
            email: Some("jo@example.org"),
            ..Q::default()
        },
        Q {
            name: "family and given",
            family: Some("smith"),
            given: Some("rob"),
            ..Q::default()
        },
        Q {
            name: "a name past z",
            words: words(&["ørs"]),
            ..Q::default()
        },
    ]);
    all
}

fn members() -> Vec<Option<Vec<String>>> {
    vec![
        None,
        Some(words(&["cln_1"])),
        Some(words(&["cln_1", "cln_2"])),
        Some(vec![]),
    ]
}

#[tokio::test]
async fn both_engines_return_the_same_pages_in_the_same_order_for_every_search() {
    let mut answers: Vec<(&str, Vec<Vec<&str>>)> = Vec::new();
    for e in engines::engines().await {
        let s = &e.store;
        load_people(s).await;
        let mut pages_seen = Vec::new();
        for member in members() {
            for q in searches() {
                let mut after = String::new();
                let mut found = Vec::new();
                // Two per page: each page's cursor is the last row shown.
                loop {
                    let (m, qq, a) = (member.clone(), q.clone(), after.clone());
                    let rows = s
                        .read(move |r| patients::search(r, m.as_deref(), &qq.query(), &a, 2))
                        .await
                        .unwrap();
                    assert!(rows.len() <= 3, "{}: {} took too many", e.name, q.name);
                    let page: Vec<&str> =
                        rows.iter().take(2).map(|(_, p)| people_id(&p.id)).collect();
                    found.extend(page.iter().copied());
                    pages_seen.push(page);
                    if rows.len() <= 2 {
                        break;
                    }
                    after = rows[1].0.clone();
                }
                assert_eq!(
                    found,
                    q.expected(member.as_deref(), ""),
                    "{}: {} ({:?}, {member:?})",
                    e.name,
                    q.name,
                    q.sort
                );
                let (m, qq) = (member.clone(), q.clone());
                let count = s
                    .read(move |r| patients::count(r, m.as_deref(), &qq.query(), 3))
                    .await
                    .unwrap();
                assert_eq!(
                    count,
                    found.len().min(3) as i64,
                    "{}: {} count",
                    e.name,
                    q.name
                );
            }
        }
        // A forged cursor (PostgreSQL text cannot hold NUL) is still a position.
        let q = Q {
            name: "nothing",
            ..Q::default()
        };
        let rows = s
            .read(|r| patients::search(r, None, &Q::default().query(), "lovelace\0", 50))
            .await
            .unwrap();
        let ids: Vec<&str> = rows.iter().map(|(_, p)| people_id(&p.id)).collect();
        assert_eq!(ids, q.expected(None, "lovelace\0"), "{}", e.name);
        answers.push((e.name, pages_seen));
    }
    for (name, pages) in &answers[1..] {
        assert!(
            pages == &answers[0].1,
            "{name} pages differently from {}",
            answers[0].0
        );
    }
}

/// The data set's own `&'static str` for an id read back.
fn people_id(id: &str) -> &'static str {
    people()
        .into_iter()
        .map(|(p, _)| p.id)
        .find(|p| *p == id)
        .expect("an id of the data set")
}

#[tokio::test]
async fn a_count_reads_no_more_than_its_cap() {
    for e in engines::engines().await {
        let s = &e.store;
        load_people(s).await;
        for (cap, want) in [(0, 0), (1, 1), (100, 13)] {
            let n = s
                .read(move |r| patients::count(r, None, &SearchQuery::default(), cap))
                .await;
            assert_eq!(n, Ok(want), "{}: cap {cap}", e.name);
        }
    }
}

/// The plan of each search shape on an empty database: every filter kind must be an index
/// search, never a walk of the whole table, for admins and clinic members alike (on
/// PostgreSQL with sequential scans priced out of reach, as with many rows).
#[tokio::test]
async fn every_search_filter_is_served_by_an_index() {
    for e in engines::engines().await {
        let s = &e.store;
        // Name queries also as planned one given name at a time (`given_keys`).
        let split = [None, Some(vec!["ada".to_string(), "adam".to_string()])];
        for member in members().into_iter().take(3) {
            for (q, keys) in searches()
                .into_iter()
                .flat_map(|q| split.clone().map(|k| (q.clone(), k)))
            {
                let (m, qq, kk) = (member.clone(), q.clone(), keys.clone());
                let plan = s
                    .write(move |w| {
                        let st = patients::search_statement(
                            w.dialect(),
                            m.as_deref(),
                            &qq.query(),
                            "",
                            51,
                            kk.as_deref(),
                        );
                        match w.dialect() {
                            careq_store::Dialect::Sqlite => w.all(
                                &format!("EXPLAIN QUERY PLAN {}", st.sql),
                                &st.values(),
                                |r| r.text(3),
                            ),
                            careq_store::Dialect::Postgres => {
                                w.execute("SET LOCAL enable_seqscan = off", &[])?;
                                w.all(&format!("EXPLAIN {}", st.sql), &st.values(), |r| r.text(0))
                            }
                        }
                    })
                    .await
                    .unwrap();
                let what = format!(
                    "{}: {} ({:?}, {member:?}, given names {keys:?}): {plan:#?}",
                    e.name, q.name, q.sort
                );
                if e.name == "sqlite" {
                    // Walking a whole index in order (an unfiltered page, stopping at the
                    // limit) is a scan too: only the unfiltered list may.
                    let walks = plan.iter().any(|step| step.starts_with("SCAN patients"));
                    let unfiltered = q.name == "nothing";
                    assert!(!walks || unfiltered, "walks the table or an index: {what}");
                    if unfiltered || (q.name == "clinic" && q.sort == Sort::Created) {
                        assert!(plan.iter().all(|s| !s.contains("TEMP B-TREE")), "{what}");
                    }
                    assert!(
                        plan.iter().any(|s| s.starts_with("SEARCH patients")),
                        "{what}"
                    );
                } else {
                    assert!(
                        !plan.iter().any(|s| s.contains("Seq Scan on patients")),
                        "walks the table: {what}"
                    );
                    assert!(plan.iter().any(|s| s.contains("Index")), "{what}");
                }
            }
        }
    }
}

/// A prefix many given names share ("ro": Robert, Rosa, Roland…) is searched one given name at
/// a time up to 64 names and as one range beyond: both page through the same patients in the
/// list order, deleted ones left out, on both engines.
#[tokio::test]
async fn a_prefix_shared_by_many_given_names_pages_in_name_order_however_many_names_share_it() {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    for names in [5usize, 70] {
        for e in engines::engines().await {
            let s = &e.store;
            clinics_for(s, &["cln_1"]).await;
            let mut people: Vec<P> = Vec::new();
            let mut add = |given: &'static str, family: &'static str| {
                let at = people.len();
                people.push(P {
                    id: leak(format!("pat_{at:04}")),
                    clinic: "cln_1",
                    mrn: leak(format!("M-{at:06}")),
                    given,
                    family,
                    dob: "1990-01-01",
                    phone: None,
                    created: NOW,
                });
            };
            for n in 0..names {
                let given = leak(format!(
                    "Ro{}{}",
                    (b'a' + (n / 26) as u8) as char,
                    (b'a' + (n % 26) as u8) as char
                ));
                for family in ["Zeller", "Adler", "Rossi"] {
                    add(given, family);
                }
            }
            // Someone whose family name alone matches, and someone matching neither.
            add("Anna", "Rogers");
            add("Bea", "Mayer");
            let stored = people.clone();
            s.write(move |w| {
                for p in &stored {
                    p.store(w)?;
                }
                // Every seventh is deleted.
                for p in stored.iter().step_by(7) {
                    patients::mark(w, p.id, PatientMark::Deleted, Some(NOW), NOW)?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
            let mut expected: Vec<(String, &str)> = people
                .iter()
                .enumerate()
                .filter(|(i, p)| {
                    let k = p.keys();
                    i % 7 != 0 && (k.given.starts_with("ro") || k.family.starts_with("ro"))
                })
                .map(|(_, p)| (p.keys().sort, p.id))
                .collect();
            expected.sort();
            let expected: Vec<&str> = expected.into_iter().map(|(_, id)| id).collect();

            let typed = words(&["ro"]);
            let split = {
                let typed = typed.clone();
                s.read(move |r| {
                    let q = SearchQuery {
                        words: &typed,
                        ..SearchQuery::default()
                    };
                    patients::given_keys(r, &q)
                })
                .await
                .unwrap()
            };
            assert_eq!(
                split.map(|k| k.len()),
                (names <= 64).then_some(names),
                "{}: {names} given names",
                e.name
            );
            let mut seen: Vec<String> = Vec::new();
            let mut after = String::new();
            loop {
                let (typed, from) = (typed.clone(), after.clone());
                let page = s
                    .read(move |r| {
                        let q = SearchQuery {
                            words: &typed,
                            ..SearchQuery::default()
                        };
                        patients::search(r, None, &q, &from, 7)
                    })
                    .await
                    .unwrap();
                let more = page.len() > 7;
                for (cursor, p) in page.into_iter().take(7) {
                    seen.push(p.id);
                    after = cursor;
                }
                if !more {
                    break;
                }
            }
            assert_eq!(seen, expected, "{}: {names} given names", e.name);
            let counted = {
                let typed = typed.clone();
                s.read(move |r| {
                    let q = SearchQuery {
                        words: &typed,
                        ..SearchQuery::default()
                    };
                    patients::count(r, None, &q, 1000)
                })
                .await
                .unwrap()
            };
            assert_eq!(counted, expected.len() as i64, "{}", e.name);
        }
    }
}
