//! Patient search and its count. The conditions are the same on both engines; the plans are
//! not: SQLite's planner needs `INDEXED BY` (and `+clinic_id` to stay off an index) to pick the
//! index a filter needs, where PostgreSQL's picks it from its statistics, and the union of a
//! name query is written the way each engine accepts and plans it. Each plan is checked by a
//! test (`tests/patients.rs`: no filter walks the table).
use super::{patient, PatientRow, COLUMNS};
use crate::{Dialect, Read, ReadExt, StoreError, Value};

/// The order of a patient list; each is a keyset order that ends in the id.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// `sort_key`: family key, given key, id.
    #[default]
    Name,
    /// Registration time, then id.
    Created,
    /// Date of birth, then id.
    BirthDate,
}

/// What a search looks for (all optional, combined with AND), keys already computed.
#[derive(Debug, Default, Clone, Copy)]
pub struct SearchQuery<'a> {
    /// The name query's words as search keys: a patient matches when every word is a prefix
    /// of the given or the family key, or (several words) all of them run together are.
    pub words: &'a [String],
    /// Search-key prefix of the family name alone (FHIR `family`).
    pub family: Option<&'a str>,
    /// Search-key prefix of the given name alone (FHIR `given`).
    pub given: Option<&'a str>,
    pub mrn: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub email: Option<&'a str>,
    pub date_of_birth: Option<&'a str>,
    pub clinic_id: Option<&'a str>,
    pub sort: Sort,
}

/// A search's SQL and its parameters.
#[derive(Debug, Clone)]
pub struct SearchStatement {
    pub sql: String,
    params: Vec<Param>,
}

#[derive(Debug, Clone)]
enum Param {
    Text(String),
    Int(i64),
}

impl SearchStatement {
    /// The parameters, `$1` first.
    pub fn values(&self) -> Vec<Value<'_>> {
        self.params
            .iter()
            .map(|p| match p {
                Param::Text(t) => Value::Text(t),
                Param::Int(n) => Value::Int(*n),
            })
            .collect()
    }

    /// Numbers a parameter as the statement is written.
    fn add(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }

    fn text(&mut self, s: &str) -> String {
        self.add(Param::Text(s.to_string()))
    }
}

/// The upper bound of a prefix range: every string that starts with `prefix` sorts below it
/// (text compares by code point on both engines: SQLite's BINARY, PostgreSQL's "C").
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10ffff}")
}

/// Live patients in the query's order after the cursor `after` (`""`: from the start), at
/// most `limit + 1`, each with its cursor (`Tx::search_patients`). `member_of`: the clinics a
/// non-admin belongs to (sealed records left out); `None` for an admin. For the name order the
/// cursor is the stored sort key, not one folded afresh: rows keep the keys they were stored
/// with.
pub fn search(
    r: &mut dyn Read,
    member_of: Option<&[String]>,
    q: &SearchQuery<'_>,
    after: &str,
    limit: u32,
) -> Result<Vec<(String, PatientRow)>, StoreError> {
    let keys = given_keys(r, q)?;
    let s = search_statement(
        r.dialect(),
        member_of,
        q,
        after,
        i64::from(limit) + 1,
        keys.as_deref(),
    );
    r.all(&s.sql, &s.values(), |row| {
        let p = patient(row)?;
        let cursor = match q.sort {
            Sort::Name => row.text(18)?,
            Sort::Created => format!("{}\u{1f}{}", p.created_at, p.id),
            Sort::BirthDate => format!("{}\u{1f}{}", p.date_of_birth, p.id),
        };
        Ok((cursor, p))
    })
}

/// How many patients [`search`] finds from the start, counting at most `cap` (the count reads
/// no more rows than that) (`Tx::count_patients`).
pub fn count(
    r: &mut dyn Read,
    member_of: Option<&[String]>,
    q: &SearchQuery<'_>,
    cap: u32,
) -> Result<i64, StoreError> {
    let keys = given_keys(r, q)?;
    let s = search_statement(
        r.dialect(),
        member_of,
        q,
        "",
        i64::from(cap),
        keys.as_deref(),
    );
    let sql = format!("SELECT COUNT(*) FROM ({}) AS counted", s.sql);
    Ok(r.int(&sql, &s.values())?.unwrap_or(0))
}

/// Most given names one typed prefix is searched name by name (see [`given_keys`]).
const MAX_GIVEN_KEYS: i64 = 64;

/// The distinct given-name keys that start with a name query's first word, when the query is
/// searched by name with nothing narrower, in the name order, and there are at most [`MAX_GIVEN_KEYS`] of them;
/// otherwise `None`. Found by skipping through the index, one step per distinct key, however
/// many patients share each: a prefix many type ("ro", "rob") then costs one short index walk
/// per given name in its order, where one range over all of them must fetch and sort every
/// patient it holds before the first page.
pub fn given_keys(
    r: &mut dyn Read,
    q: &SearchQuery<'_>,
) -> Result<Option<Vec<String>>, StoreError> {
    let narrower = q.mrn.or(q.phone).or(q.email).or(q.date_of_birth).is_some();
    let Some(first) = q
        .words
        .first()
        .filter(|_| !narrower && q.sort == Sort::Name)
    else {
        return Ok(None);
    };
    let by = if r.dialect() == Dialect::Sqlite {
        " INDEXED BY patients_given_key"
    } else {
        ""
    };
    let sql = format!(
        "WITH RECURSIVE k (v, n) AS (
             SELECT (SELECT given_key FROM patients{by} WHERE given_key >= $1 AND given_key < $2
                     ORDER BY given_key LIMIT 1), 1
             UNION ALL
             SELECT (SELECT given_key FROM patients{by} WHERE given_key > k.v AND given_key < $2
                     ORDER BY given_key LIMIT 1), k.n + 1
             FROM k WHERE k.v IS NOT NULL AND k.n <= $3)
         SELECT v FROM k WHERE v IS NOT NULL"
    );
    let end = prefix_end(first);
    let keys = r.all(
        &sql,
        &[
            first.as_str().into(),
            end.as_str().into(),
            MAX_GIVEN_KEYS.into(),
        ],
        |row| row.text(0),
    )?;
    Ok((keys.len() as i64 <= MAX_GIVEN_KEYS).then_some(keys))
}

/// The statement [`search`] runs on `dialect`, taking at most `take` rows (public for plan
/// tests). Each filter kind is served by an index; a name query with nothing narrower is the
/// union of index ranges on its first word — the family key's (for the name order a range of
/// sort_key itself, which starts with it) and the given key's, or with `given_keys` (from
/// [`given_keys`]) one range per given name in the list order — each cut at the limit, with
/// every word checked on the rows found.
pub fn search_statement(
    dialect: Dialect,
    member_of: Option<&[String]>,
    q: &SearchQuery<'_>,
    after: &str,
    take: i64,
    given_keys: Option<&[String]>,
) -> SearchStatement {
    let sqlite = dialect == Dialect::Sqlite;
    // A cursor is any position (a forged one too), but PostgreSQL text cannot hold NUL: U+0001
    // sorts right after it, and no stored key holds either.
    let after = if sqlite {
        after.to_string()
    } else {
        after.replace('\0', "\u{1}")
    };
    let mut s = SearchStatement {
        sql: String::new(),
        params: Vec::new(),
    };
    let mut cond = String::from("deleted_at IS NULL AND merged_into IS NULL");
    let narrow_index = [
        (q.mrn, "patients_mrn_sort"),
        (q.phone, "patients_phone_sort"),
        (q.email, "patients_email_sort"),
        (q.date_of_birth, "patients_dob_sort"),
    ]
    .into_iter()
    .find_map(|(v, idx)| v.map(|_| idx));
    let mut one_clinic = q.clinic_id.is_some();
    if let Some(clinics) = member_of {
        // A member sees their clinics' records, sealed ones left out.
        cond.push_str(" AND sealed_at IS NULL");
        match clinics {
            // A member of no clinic sees nothing (`IN ()` is not PostgreSQL).
            [] => cond.push_str(" AND 1 = 0"),
            // One clinic (the usual case) is an equality, so the clinic's indexes yield the order.
            [one] => {
                cond.push_str(&format!(" AND clinic_id = {}", s.text(one)));
                one_clinic = true;
            }
            many => {
                // SQLite, with nothing narrower to search by, walks the list order and keeps
                // the caller's clinics (`+` keeps its planner off the clinic index, whose rows
                // would then all need sorting).
                let narrower =
                    narrow_index.is_some() || !q.words.is_empty() || q.clinic_id.is_some();
                let col = if sqlite && !narrower {
                    "+clinic_id"
                } else {
                    "clinic_id"
                };
                let marks: Vec<String> = many.iter().map(|c| s.text(c)).collect();
                cond.push_str(&format!(" AND {col} IN ({})", marks.join(", ")));
            }
        }
    }
    // FHIR's `family` and `given`: a range of the sort key (which starts with the family
    // name's search key) and of the given name's search key.
    if let Some(family) = q.family.filter(|k| !k.is_empty()) {
        let (start, end) = (s.text(family), s.text(&prefix_end(family)));
        cond.push_str(&format!(" AND sort_key >= {start} AND sort_key < {end}"));
    }
    if let Some(given) = q.given.filter(|k| !k.is_empty()) {
        let (start, end) = (s.text(given), s.text(&prefix_end(given)));
        cond.push_str(&format!(" AND given_key >= {start} AND given_key < {end}"));
    }
    for (col, val) in [
        ("mrn", q.mrn),
        ("phone", q.phone),
        ("email", q.email),
        ("date_of_birth", q.date_of_birth),
        ("clinic_id", q.clinic_id),
    ] {
        if let Some(v) = val {
            cond.push_str(&format!(" AND {col} = {}", s.text(v)));
        }
    }
    if !q.words.is_empty() {
        let mut prefix = |w: &str| {
            let (start, end) = (s.text(w), s.text(&prefix_end(w)));
            format!(
                "((family_key >= {start} AND family_key < {end}) OR (given_key >= {start} AND given_key < {end}))"
            )
        };
        let each: Vec<String> = q.words.iter().map(|w| prefix(w)).collect();
        let mut text = format!("({})", each.join(" AND "));
        if q.words.len() > 1 {
            text.push_str(&format!(" OR {}", prefix(&q.words.concat())));
        }
        cond.push_str(&format!(" AND ({text})"));
    }
    let lim = s.add(Param::Int(take));
    let (order, keyset) = match q.sort {
        // A name query in the name order whose prefix begins no given name is the family
        // range alone, bounded by its own `past`: PostgreSQL refuses a parameter left unused.
        Sort::Name
            if !q.words.is_empty()
                && narrow_index.is_none()
                && given_keys.is_some_and(|k| k.is_empty()) =>
        {
            ("sort_key", String::new())
        }
        Sort::Name => ("sort_key", format!("sort_key > {}", s.text(&after))),
        Sort::Created | Sort::BirthDate => {
            let (order, col) = if q.sort == Sort::Created {
                ("created_at, id", "created_at")
            } else {
                ("date_of_birth, id", "date_of_birth")
            };
            let (v, id) = after.split_once('\u{1f}').unwrap_or(("", ""));
            let (v, id) = (s.text(v), s.text(id));
            (order, format!("({col}, id) > ({v}, {id})"))
        }
    };
    let select = |index: Option<&str>, keyset: &str, extra: &str| {
        let by = match index {
            Some(i) if sqlite => format!(" INDEXED BY {i}"),
            _ => String::new(),
        };
        format!(
            "SELECT {COLUMNS}, sort_key FROM patients{by} WHERE {cond} AND {keyset}{extra}
             ORDER BY {order} LIMIT {lim}"
        )
    };
    s.sql = match (q.words.first(), narrow_index) {
        (Some(first), None) => {
            let by_name = q.sort == Sort::Name;
            let end = s.text(&prefix_end(first));
            // PostgreSQL must see every parameter used: the lower bound only where a range
            // starts at the prefix.
            let start = if by_name && given_keys.is_some() {
                String::new()
            } else {
                s.text(first)
            };
            let by_family = if by_name {
                // One lower bound on sort_key (SQLite uses only one): past both the cursor and
                // the prefix. No sort key equals a prefix (keys end in a separator and the id),
                // so `>` is exact.
                let past = s.text(after.as_str().max(first.as_str()));
                select(
                    None,
                    &format!("sort_key > {past}"),
                    &format!(" AND sort_key < {end}"),
                )
            } else {
                select(
                    Some("patients_family_key"),
                    &keyset,
                    &format!(" AND family_key >= {start} AND family_key < {end}"),
                )
            };
            let mut parts = vec![by_family];
            match given_keys {
                // In the name order, each given name's patients come off the index in that
                // order already: a short walk each, no sort of them all.
                Some(keys) if by_name => {
                    for key in keys {
                        let key = s.text(key);
                        parts.push(select(
                            Some("patients_given_key"),
                            &keyset,
                            &format!(" AND given_key = {key}"),
                        ));
                    }
                }
                _ => parts.push(select(
                    Some("patients_given_key"),
                    &keyset,
                    &format!(" AND given_key >= {start} AND given_key < {end}"),
                )),
            }
            if sqlite {
                // SQLite takes no parentheses around the members of a compound SELECT.
                let each: Vec<String> = parts
                    .iter()
                    .map(|p| format!("SELECT * FROM ({p})"))
                    .collect();
                format!("{} ORDER BY {order} LIMIT {lim}", each.join(" UNION "))
            } else {
                let each: Vec<String> = parts.iter().map(|p| format!("({p})")).collect();
                format!(
                    "SELECT * FROM ({}) AS found ORDER BY {order} LIMIT {lim}",
                    each.join(" UNION ")
                )
            }
        }
        (_, Some(idx)) => select(Some(idx), &keyset, ""),
        (None, None) => {
            // Nothing narrower than a clinic: SQLite walks the order's own index (the clinic's
            // one when there is one clinic).
            let idx = match (q.sort, one_clinic) {
                (Sort::Name, true) => Some("patients_clinic_sort"),
                (Sort::Name, false) => None,
                (Sort::Created, true) => Some("patients_clinic_created"),
                (Sort::Created, false) => Some("patients_created"),
                (Sort::BirthDate, true) => Some("patients_clinic_dob"),
                (Sort::BirthDate, false) => Some("patients_dob_id"),
            };
            select(idx, &keyset, "")
        }
    };
    s
}
