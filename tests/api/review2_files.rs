//! Issue 24, points 3 and 4: an export file is served only while its owner may still see what
//! it holds (their role and clinics now; 404 otherwise), and is withdrawn (410, and removed
//! from disk) once a patient it names is sealed, deleted or merged; every file and directory
//! careq writes is owner-only whatever the umask it was started under.
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::exports::until_done;
use crate::helpers::*;
use crate::patients::{create_patient, header, new_patient_json};

/// An admin, two clinics, and Ann, a clinician of the first.
struct Scene {
    app: TestApp,
    admin: String,
    clinic: String,
    other: String,
    ann_id: String,
    ann: String,
}

async fn scene() -> Scene {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "North").await;
    let other = app.create_clinic(&admin, "South").await;
    let (ann_id, ann) = app
        .create_staff(&admin, "ann", "clinician", &[&clinic])
        .await;
    Scene {
        app,
        admin,
        clinic,
        other,
        ann_id,
        ann,
    }
}

impl Scene {
    async fn patient(&self, clinic: &str, family: &str) -> String {
        create_patient(
            &self.app,
            &self.admin,
            &new_patient_json(clinic, "Rory", family),
        )
        .await
        .0
    }

    /// Exports `kind` as `token` and waits for the file; returns (job id, file path).
    async fn export(&self, token: &str, body: Value) -> (String, String) {
        let res = self
            .app
            .authed(Method::POST, "/v1/exports", token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202, "{body}");
        let job: Value = res.json().await.unwrap();
        let id = job["id"].as_str().unwrap().to_string();
        let (file, _) = until_done(&self.app.url(""), token, &id).await;
        (id, file)
    }

    async fn get(&self, token: &str, path: &str) -> Response {
        self.app
            .authed(Method::GET, path, token)
            .send()
            .await
            .unwrap()
    }

    async fn text(&self, token: &str, file: &str) -> String {
        let res = self.get(token, file).await;
        assert_eq!(res.status(), 200);
        res.text().await.unwrap()
    }

    async fn admin_post(&self, path: &str, body: Value) -> Response {
        self.app
            .authed(Method::POST, path, &self.admin)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn patch_user(&self, id: &str, patch: Value) {
        let res = self
            .app
            .authed(Method::PATCH, &format!("/v1/users/{id}"), &self.admin)
            .header("content-type", "application/merge-patch+json")
            .header("if-match", "*")
            .body(patch.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{patch}");
    }

    fn on_disk(&self, job: &str) -> bool {
        let dir = self.app.state.config.export_dir();
        ["csv", "ndjson"]
            .iter()
            .any(|ext| dir.join(format!("{job}.{ext}")).exists())
    }

    /// GET, HEAD and a ranged GET of the file all answer `status` (with a problem where a body
    /// is sent); returns the GET's problem.
    async fn refused(&self, token: &str, file: &str, status: u16) -> Value {
        let body = assert_problem(self.get(token, file).await, status).await;
        let head = self
            .app
            .authed(Method::HEAD, file, token)
            .send()
            .await
            .unwrap();
        assert_eq!(head.status().as_u16(), status);
        assert_eq!(header(&head, "content-type"), "application/problem+json");
        assert!(head.headers().get("accept-ranges").is_none());
        let ranged = self
            .app
            .authed(Method::GET, file, token)
            .header("range", "bytes=0-9")
            .send()
            .await
            .unwrap();
        assert!(ranged.headers().get("content-range").is_none());
        assert_problem(ranged, status).await;
        body
    }

    /// The file answers 410 saying what became of a patient it names, and is off the disk.
    async fn withdrawn(&self, token: &str, job: &str, file: &str, what: &str) {
        let body = self.refused(token, file, 410).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(what), "{detail}");
        assert!(!self.on_disk(job), "a withdrawn file stays on disk");
    }

    /// A future hour, for bookings.
    fn later(hours: i64) -> String {
        let t = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(hours);
        t.strftime("%Y-%m-%dT%H:00:00Z").to_string()
    }

    async fn book(&self, patient: &str, hours: i64) {
        let res = self
            .admin_post(
                "/v1/appointments",
                json!({"clinic_id": self.clinic, "patient_id": patient, "clinician_id": self.ann_id,
                       "start": Self::later(hours), "duration_minutes": 20, "reason": "follow-up"}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
}

#[tokio::test]
async fn a_patients_export_answers_410_once_a_patient_it_names_is_sealed_and_leaves_the_disk() {
    let s = scene().await;
    let amy = s.patient(&s.clinic, "Pond").await;
    let (job, file) = s
        .export(&s.ann, json!({"kind": "patients", "format": "csv"}))
        .await;
    assert!(s.text(&s.ann, &file).await.contains(&amy));

    let res = s
        .admin_post(
            &format!("/v1/patients/{amy}/seal"),
            json!({"reason": "court order"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    s.withdrawn(&s.ann, &job, &file, "sealed").await;
    // Admins, who read sealed records, get the same answer: the file is gone for everyone.
    s.refused(&s.admin, &file, 410).await;
    // The job itself still leads to the file, which says why it is gone.
    let res = s.get(&s.ann, &format!("/v1/jobs/{job}")).await;
    assert_eq!(res.status(), 303);
    assert_eq!(header(&res, "location"), file);
}

#[tokio::test]
async fn a_queue_export_answers_410_once_a_patient_it_names_is_deleted() {
    let s = scene().await;
    let amy = s.patient(&s.clinic, "Pond").await;
    let res = s
        .admin_post(
            &format!("/v1/clinics/{}/queue/tickets", s.clinic),
            json!({"priority": "normal", "patient_id": amy}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let (job, file) = s
        .export(&s.ann, json!({"kind": "queue", "format": "ndjson"}))
        .await;
    assert!(s.text(&s.ann, &file).await.contains(&amy));

    let res = s
        .app
        .authed(Method::DELETE, &format!("/v1/patients/{amy}"), &s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    s.withdrawn(&s.ann, &job, &file, "deleted").await;
}

#[tokio::test]
async fn an_appointments_export_answers_410_once_a_patient_it_names_is_merged() {
    let s = scene().await;
    let amy = s.patient(&s.clinic, "Pond").await;
    let twin = s.patient(&s.clinic, "Williams").await;
    s.book(&twin, 30).await;
    let (job, file) = s
        .export(&s.ann, json!({"kind": "appointments", "format": "csv"}))
        .await;
    assert!(s.text(&s.ann, &file).await.contains(&twin));

    let res = s
        .admin_post(&format!("/v1/patients/{twin}/merge"), json!({"into": amy}))
        .await;
    assert_eq!(res.status(), 200);
    s.withdrawn(&s.ann, &job, &file, "merged").await;
}

#[tokio::test]
async fn a_withdrawn_file_leaves_the_disk_even_if_nobody_asks_for_it() {
    let s = scene().await;
    let amy = s.patient(&s.clinic, "Pond").await;
    let (job, _) = s
        .export(&s.ann, json!({"kind": "patients", "format": "ndjson"}))
        .await;
    assert!(s.on_disk(&job));
    let res = s
        .admin_post(
            &format!("/v1/patients/{amy}/seal"),
            json!({"reason": "court order"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    // The runner's sweep (every few seconds) removes it without a download.
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.on_disk(&job) {
        assert!(
            Instant::now() < deadline,
            "the withdrawn file stays on disk"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Unsealing does not bring it back.
    let res = s
        .admin_post(&format!("/v1/patients/{amy}/unseal"), json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let file = format!("/v1/exports/{job}/file");
    let body = s.refused(&s.ann, &file, 410).await;
    assert!(body["detail"].as_str().unwrap().contains("sealed"));
}

#[tokio::test]
async fn exports_that_name_no_retired_patient_still_download_with_200_and_206() {
    let s = scene().await;
    let amy = s.patient(&s.clinic, "Pond").await;
    let rory = s.patient(&s.clinic, "Williams").await;
    let clara = s.patient(&s.other, "Oswald").await;
    // Ann's export of her clinic names Amy and Rory; an admin's export of the other clinic
    // names Clara only.
    let (_, mine) = s
        .export(&s.ann, json!({"kind": "patients", "format": "csv"}))
        .await;
    let (_, theirs) = s
        .export(
            &s.admin,
            json!({"kind": "patients", "format": "csv", "clinic_id": s.other}),
        )
        .await;
    let whole = s.text(&s.admin, &theirs).await;
    assert!(whole.contains(&clara) && !whole.contains(&amy));

    // Rory's record changes (neither a seal, a deletion nor a merge): Ann's file stays. Then
    // Amy is sealed: the other clinic's file, which does not name her, stays.
    let res = s
        .app
        .authed(Method::PATCH, &format!("/v1/patients/{rory}"), &s.admin)
        .header("content-type", "application/merge-patch+json")
        .header("if-match", "*")
        .body(r#"{"phone": "+436641234567"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(s.text(&s.ann, &mine).await.lines().count(), 3);
    let res = s
        .admin_post(
            &format!("/v1/patients/{amy}/seal"),
            json!({"reason": "court order"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(s.text(&s.admin, &theirs).await, whole);
    let res = s
        .app
        .authed(Method::GET, &theirs, &s.admin)
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(
        header(&res, "content-range"),
        format!("bytes 0-9/{}", whole.len())
    );
    assert_eq!(res.text().await.unwrap(), whole[..10]);

    // An export Ann makes after the seal leaves Amy out, and stays downloadable.
    let (_, after) = s
        .export(&s.ann, json!({"kind": "patients", "format": "csv"}))
        .await;
    let text = s.text(&s.ann, &after).await;
    assert!(text.contains(&rory) && !text.contains(&amy));
}

#[tokio::test]
async fn a_clinician_moved_to_another_clinic_gets_404_for_their_earlier_exports() {
    let s = scene().await;
    let amy = s.patient(&s.clinic, "Pond").await;
    s.book(&amy, 30).await;
    let (pjob, patients) = s
        .export(&s.ann, json!({"kind": "patients", "format": "csv"}))
        .await;
    let (ajob, appointments) = s
        .export(&s.ann, json!({"kind": "appointments", "format": "csv"}))
        .await;
    assert!(s.text(&s.ann, &appointments).await.contains("follow-up"));

    s.patch_user(&s.ann_id, json!({"clinic_ids": [s.other]}))
        .await;
    for (job, file) in [(&pjob, &patients), (&ajob, &appointments)] {
        s.refused(&s.ann, file, 404).await;
        assert_problem(s.get(&s.ann, &format!("/v1/jobs/{job}")).await, 404).await;
        // Admins still see the job and its file.
        assert_eq!(s.get(&s.admin, file).await.status(), 200);
    }
    // Back in the clinic, the files are hers to see again.
    s.patch_user(&s.ann_id, json!({"clinic_ids": [s.clinic, s.other]}))
        .await;
    assert_eq!(s.get(&s.ann, &patients).await.status(), 200);
}

#[tokio::test]
async fn a_demoted_exporter_gets_403_as_a_receptionist_and_404_for_an_admins_wider_export() {
    let s = scene().await;
    s.patient(&s.clinic, "Pond").await;
    let (_, file) = s
        .export(&s.ann, json!({"kind": "patients", "format": "csv"}))
        .await;
    // A receptionist may not export at all: 403 on every export route, as the contract says.
    s.patch_user(&s.ann_id, json!({"role": "receptionist"}))
        .await;
    let body = s.refused(&s.ann, &file, 403).await;
    assert!(body["detail"].as_str().is_some());

    // An admin's export covers every clinic and sealed records; demoted to a clinician of one
    // clinic, its maker no longer sees all of that.
    let (boss_id, boss) = s
        .app
        .create_staff(&s.admin, "boss", "admin", &[&s.clinic])
        .await;
    let (job, wide) = s
        .export(&boss, json!({"kind": "patients", "format": "csv"}))
        .await;
    assert_eq!(s.get(&boss, &wide).await.status(), 200);
    s.patch_user(&boss_id, json!({"role": "clinician"})).await;
    s.refused(&boss, &wide, 404).await;
    assert_problem(s.get(&boss, &format!("/v1/jobs/{job}")).await, 404).await;
}

// ---- Point 4: modes on disk -------------------------------------------------------------

/// A path's permission bits, in octal as `ls` and `chmod` write them.
fn mode(path: &Path) -> String {
    let bits = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    format!("{:o}", bits & 0o777)
}

/// The umask the child processes get: permissive, as on many servers.
const UMASK: &str = "umask 022";

/// `careq ARGS…` run through `sh -c 'umask 022; exec careq …'`.
fn careq_under_umask(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{UMASK}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_careq"))
        .args(args)
        .env_remove("CAREQ_ADMIN_PASSWORD")
        .env("CAREQ_LOG", "info")
        .env("CAREQ_RATE_BURST", "100000");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A `careq serve` started under the permissive umask: its address, and its log.
struct Served {
    child: Child,
    base: String,
    log: Vec<String>,
    rest: Option<mpsc::Receiver<String>>,
}

impl Served {
    /// Kills the server and returns every line it logged (all of them: the pipe is read to
    /// its end).
    fn stop(mut self) -> Vec<Value> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let rest = self.rest.take().map(|r| r.iter().collect::<Vec<_>>());
        std::mem::take(&mut self.log)
            .into_iter()
            .chain(rest.unwrap_or_default())
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_under_umask(env: &[(&str, &str)]) -> Served {
    let mut child = careq_under_umask(&["serve", "--listen", "127.0.0.1:0"], env)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut log = Vec::new();
    let base = loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "careq exited: {log:?}"
        );
        log.push(line.clone());
        if line.contains("careq listening") {
            let v: Value = serde_json::from_str(&line).unwrap();
            break format!("http://{}", v["fields"]["address"].as_str().unwrap());
        }
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in out.lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    Served {
        child,
        base,
        log,
        rest: Some(rx),
    }
}

async fn token(base: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{base}/v1/auth/token"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

fn run_ok(mut cmd: Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn every_file_and_directory_careq_writes_is_owner_only_under_a_permissive_umask() {
    let dir = tempfile::tempdir().unwrap();
    let db_file = dir.path().join("clinic.db");
    let db = test_database(&db_file).await;
    let exports: PathBuf = dir.path().join("exports");
    let env = [
        ("CAREQ_DATABASE_URL", db.url.as_str()),
        ("CAREQ_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("CAREQ_EXPORT_DIR", exports.to_str().unwrap()),
    ];
    let served = serve_under_umask(&env);
    let admin = token(&served.base).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client
        .post(format!("{}/v1/exports", served.base))
        .bearer_auth(&admin)
        .json(&json!({"kind": "queue", "format": "csv"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let job: Value = res.json().await.unwrap();
    let id = job["id"].as_str().unwrap();
    until_done(&served.base, &admin, id).await;

    assert_eq!(mode(&exports), "700", "the export directory");
    assert_eq!(
        mode(&exports.join(format!("{id}.csv"))),
        "600",
        "export file"
    );
    if !on_postgres() {
        for suffix in ["", "-wal", "-shm"] {
            let path = PathBuf::from(format!("{}{suffix}", db_file.display()));
            assert_eq!(mode(&path), "600", "{}", path.display());
        }
        let copy = dir.path().join("copy.db");
        run_ok(careq_under_umask(
            &["backup", copy.to_str().unwrap()],
            &env[..1],
        ));
        assert_eq!(mode(&copy), "600", "the backup");
    }
    served.stop();

    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    let archive = dir.path().join("archive.jsonl");
    run_ok(careq_under_umask(
        &[
            "audit",
            "archive",
            "--before",
            &today,
            "--out",
            archive.to_str().unwrap(),
        ],
        &env[..1],
    ));
    assert_eq!(mode(&archive), "600", "the audit archive");
}

/// The warnings `careq serve` logs about `file` when started on it (once it has answered a
/// sign-in, so the database is open).
async fn warnings_at_start(file: &Path) -> Vec<Value> {
    let url = format!("sqlite://{}", file.display());
    let served = serve_under_umask(&[
        ("CAREQ_DATABASE_URL", &url),
        ("CAREQ_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ]);
    token(&served.base).await;
    served
        .stop()
        .into_iter()
        .filter(|v| v["level"] == "WARN" && v["fields"]["path"] == file.to_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_database_file_others_may_read_is_reported_at_start_with_its_path_and_mode() {
    crate::sqlite_only!("the warning is about the SQLite file's mode");
    let dir = tempfile::tempdir().unwrap();
    let db_file = dir.path().join("clinic.db");
    // An empty file is a new database to SQLite; this one was made by someone else, 0644.
    std::fs::write(&db_file, b"").unwrap();
    std::fs::set_permissions(&db_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let found = warnings_at_start(&db_file).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["fields"]["mode"], "0644", "{found:?}");
    // careq leaves the operator's file as it found it (the warning says how to fix it).
    assert_eq!(mode(&db_file), "644");

    // A file careq creates itself is owner-only and draws no warning.
    let fresh = dir.path().join("fresh.db");
    assert_eq!(warnings_at_start(&fresh).await, Vec::<Value>::new());
    assert_eq!(mode(&fresh), "600");
}

#[tokio::test]
async fn an_in_process_server_writes_its_export_directory_and_files_owner_only() {
    // The library itself (no umask set by `main`) makes the modes explicit; under the test
    // runner's own umask (commonly 022) that is what this checks.
    let s = scene().await;
    s.patient(&s.clinic, "Pond").await;
    let (job, _) = s
        .export(&s.ann, json!({"kind": "patients", "format": "csv"}))
        .await;
    let dir = s.app.state.config.export_dir();
    assert_eq!(mode(&dir), "700");
    assert_eq!(mode(&dir.join(format!("{job}.csv"))), "600");
    if !on_postgres() {
        let db = s
            .app
            .state
            .config
            .database_url
            .trim_start_matches("sqlite://")
            .to_string();
        assert_eq!(mode(Path::new(&db)), "600");
    }
}

#[tokio::test]
async fn a_seal_committed_while_an_export_reads_its_snapshot_still_withdraws_the_file() {
    // The runner stops at its gate once it has claimed the job; the test plays its part around
    // a seal: the snapshot is read, the seal commits, and only then is the file recorded with
    // what the snapshot held (the order a long export can meet).
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let held = gate.clone();
    let app = spawn_app_with(move |c| c.export_gate = Some(held)).await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "North").await;
    let (amy, _) = create_patient(&app, &admin, &new_patient_json(&clinic, "Amy", "Pond")).await;
    let res = app
        .authed(Method::POST, "/v1/exports", &admin)
        .json(&json!({"kind": "patients", "format": "csv"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let runner = loop {
        let runner: Option<String> = sqlx::query_scalar("SELECT runner FROM jobs WHERE id = $1")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if let Some(r) = runner {
            break r;
        }
        assert!(Instant::now() < deadline, "the job was never claimed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let scope = careq::store::ExportScope {
        kind: "patients".into(),
        sealed: true,
        ..Default::default()
    };
    let page = {
        let scope = scope.clone();
        app.state
            .db
            .read(move |conn| {
                careq_store::jobs::snapshot(conn, |conn| {
                    Ok(careq::exports::records::export_page(conn, &scope, "", 10)?)
                })
            })
            .await
            .unwrap()
    };
    let named: Vec<(String, i64)> = page.iter().filter_map(|r| r.patient.clone()).collect();
    assert_eq!(named, [(amy.clone(), 1)]);
    let res = app
        .authed(Method::POST, &format!("/v1/patients/{amy}/seal"), &admin)
        .json(&json!({"reason": "court order"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let path = careq::exports::file_path(&app.state.config, &id, "csv");
    careq::private_files::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, format!("id\r\n{amy}\r\n")).unwrap();
    let size = std::fs::metadata(&path).unwrap().len() as i64;
    let (job, named) = (id.clone(), std::sync::Arc::new(named));
    app.state
        .db
        .write(move |conn| {
            let end = careq::store::JobEnd::Succeeded {
                rows: 1,
                size_bytes: size,
                at: careq::clock::now_rfc3339(),
                expires_at: careq::clock::now_unix() + 3600,
            };
            assert!(careq::exports::records::finish_job(
                conn, &job, &runner, &end
            )?);
            careq::exports::records::add_export_patients(conn, &job, &named)?;
            Ok(())
        })
        .await
        .unwrap();

    let file = format!("/v1/exports/{id}/file");
    let res = app.authed(Method::GET, &file, &admin).send().await.unwrap();
    let body = assert_problem(res, 410).await;
    assert!(
        body["detail"].as_str().unwrap().contains("sealed"),
        "{body}"
    );
    assert!(!path.exists(), "a withdrawn file stays on disk");
    drop(gate);
}

#[tokio::test]
async fn a_file_finished_before_careq_listed_its_patients_is_withdrawn_by_the_upgrade() {
    let s = scene().await;
    s.patient(&s.clinic, "Pond").await;
    let (job, file) = s
        .export(&s.ann, json!({"kind": "patients", "format": "csv"}))
        .await;
    // The job as an earlier version left it (no list, nothing withdrawn), then the statement
    // migration 0016 ends with, as the upgrade runs it on this engine.
    let mut w = s.app.writable().await;
    for sql in [
        "DELETE FROM export_patients",
        "UPDATE jobs SET withdrawn = NULL",
    ] {
        sqlx::query(sql).execute(&mut w).await.unwrap();
    }
    let engine = if on_postgres() { "postgres" } else { "sqlite" };
    let migration = std::fs::read_to_string(format!(
        "{}/migrations/{engine}/0016_export_patients.sql",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let code: String = migration
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    let upgrade = code
        .split(';')
        .map(str::trim)
        .find(|s| s.starts_with("UPDATE jobs"))
        .expect("the migration withdraws earlier files");
    sqlx::query(upgrade).execute(&mut w).await.unwrap();
    drop(w);
    let body = s.refused(&s.ann, &file, 410).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("export again"), "{detail}");
    assert!(!s.on_disk(&job), "a withdrawn file stays on disk");
}

#[tokio::test]
async fn concurrent_and_vanishing_downloads_of_a_withdrawn_file_all_get_410_and_change_nothing_else(
) {
    let s = scene().await;
    let amy = s.patient(&s.clinic, "Pond").await;
    let (job, file) = s
        .export(&s.ann, json!({"kind": "patients", "format": "csv"}))
        .await;
    assert!(s.on_disk(&job));
    let res = s
        .admin_post(
            &format!("/v1/patients/{amy}/seal"),
            json!({"reason": "court order"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    // The first downloads after the seal each withdraw the file (a write), while others hang
    // up mid-request: every answer is 410, the file is gone once, and the server goes on.
    let auth = [format!("Authorization: Bearer {}", s.ann)];
    let real = (0..16).map(|_| s.get(&s.ann, &file));
    let gone = (0..16).map(|i| s.app.vanish("GET", &file, &auth, "", i % 2 == 0));
    let (answers, _) = tokio::join!(
        futures_util::future::join_all(real),
        futures_util::future::join_all(gone)
    );
    for res in answers {
        let problem = assert_problem(res, 410).await;
        assert!(problem["detail"].as_str().unwrap().contains("sealed"));
    }
    assert!(!s.on_disk(&job), "a withdrawn file stays on disk");
    // Reads and writes go on: a new export names no sealed patient and downloads.
    let rory = s.patient(&s.clinic, "Williams").await;
    let (_, again) = s
        .export(&s.ann, json!({"kind": "patients", "format": "csv"}))
        .await;
    let csv = s.text(&s.ann, &again).await;
    assert!(csv.contains(&rory) && !csv.contains(&amy));
    s.app.assert_no_transaction_left_open().await;
}
