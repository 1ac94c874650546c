//! The export runner: one task per process takes queued jobs (and jobs whose runner stopped
//! renewing its lease) from the store, writes each file from one consistent snapshot in pages,
//! and removes files past their retention. Jobs are durable rows, so a job queued or running
//! when a process stops is run again from the start by the next runner that claims it; a file is
//! written under a temporary name and renamed only once complete.
//!
//! A file's rows are read by one read unit, inside one snapshot (`careq_store::jobs::snapshot`),
//! on an engine's reader thread; it hands the count and then each page over a small channel to
//! the runner's task, which writes them out and renews the lease meanwhile.
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, BufWriter};

use super::domain::{Encoder, Format};
use super::records;
use crate::access::Action;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{ExportRow, ExportScope, JobEnd, JobProgress, JobRecord, LogRow, Read};

/// How often an idle runner looks for work other processes queued, or for leases that ran out.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// How many named patients a running export holds before it records them (with a heartbeat),
/// so memory stays flat however many rows a second it writes.
const PATIENTS_HELD: usize = 10_000;

/// Files to remove per sweep, expired or withdrawn (the next sweep takes the rest).
const SWEEP_BATCH: u32 = 100;

/// Starts this process's runner; it ends with the process.
pub fn spawn(state: AppState) {
    let runner = crate::ids::new_id("run");
    tokio::spawn(async move {
        let mut last_sweep: Option<Instant> = None;
        loop {
            if last_sweep.is_none_or(|t| t.elapsed() >= sweep_every(&state)) {
                last_sweep = Some(Instant::now());
                if let Err(e) = sweep(&state).await {
                    tracing::warn!(error = ?e.problem().detail, "removing expired exports failed");
                }
            }
            match claim(&state, &runner).await {
                Ok(Some(job)) => {
                    // On a task of its own: a job that panics fails alone; the runner goes on
                    // (the job is run again once its lease runs out).
                    let (st, r) = (state.clone(), runner.clone());
                    if tokio::spawn(async move { run(&st, &r, job).await })
                        .await
                        .is_err()
                    {
                        tracing::error!("an export job panicked");
                    }
                }
                Ok(None) => {
                    let wake = state.jobs.notified();
                    let _ = tokio::time::timeout(idle_wait(&state), wake).await;
                }
                Err(e) => {
                    tracing::warn!(error = ?e.problem().detail, "claiming an export job failed");
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
        }
    });
}

fn lease(state: &AppState) -> Duration {
    Duration::from_secs(state.config.export_lease_seconds.max(1))
}

/// Sweeps find expired files and files withdrawn because a patient they name was sealed,
/// deleted or merged (a download finds those at once; the sweep removes the rest from disk).
fn sweep_every(state: &AppState) -> Duration {
    state
        .config
        .export_retention()
        .clamp(Duration::from_millis(100), Duration::from_secs(5))
}

fn idle_wait(state: &AppState) -> Duration {
    IDLE_POLL.min(sweep_every(state))
}

async fn claim(state: &AppState, runner: &str) -> Result<Option<JobRecord>, ApiError> {
    // Looking is a read; only a job to take costs a write (on SQLite, a commit).
    let now = crate::clock::now_ms();
    let waiting = state
        .db
        .read(move |conn| Ok(records::job_waiting(conn, now)?))
        .await?;
    if !waiting {
        return Ok(None);
    }
    let runner = runner.to_string();
    let lease_ms = lease(state).as_millis() as i64;
    state
        .db
        .write(move |conn| {
            let now = crate::clock::now_ms();
            Ok(records::claim_job(conn, &runner, now, now + lease_ms)?)
        })
        .await
}

/// Runs one claimed job to its end and records the outcome (and, on success, the access-log
/// entry) in one unit, only if this runner still holds the job.
async fn run(state: &AppState, runner: &str, job: JobRecord) {
    let permit = match &state.config.export_gate {
        Some(gate) => gate.clone().acquire_owned().await.ok(),
        None => None,
    };
    let part = super::part_path(&state.config, &job.id);
    let outcome = write_file(state, runner, &job, &part).await;
    drop(permit);
    let at = crate::clock::now_rfc3339();
    let mut named = Vec::new();
    let end = match outcome {
        Ok(Written::Done {
            rows,
            size,
            patients,
        }) => {
            named = patients;
            let keep = state.config.export_retention().as_secs() as i64;
            let ms = state.config.export_retention().subsec_millis();
            JobEnd::Succeeded {
                rows,
                size_bytes: size as i64,
                at,
                // Rounded up: a retention under a second still lasts until the next second.
                expires_at: crate::clock::now_unix() + keep + i64::from(ms > 0),
            }
        }
        Ok(Written::LostLease) => return,
        Err(e) => {
            // The status and, for an internal failure, its cause (as the request log keeps it):
            // never the error's whole debug form, which could carry a row being written.
            let cause = match &e {
                ApiError::Internal(c) => c.as_str(),
                _ => "",
            };
            tracing::error!(job = %job.id, status = e.status().code, cause, "export failed");
            let _ = tokio::fs::remove_file(&part).await;
            let mut problem = ApiError::internal("export failed").problem();
            // The request that asked for the export: the id to quote.
            problem.request_id = job.request_id.clone();
            problem.instance = Some(super::job_location(&job.id));
            JobEnd::Failed {
                error: serde_json::to_string(&problem).unwrap_or_default(),
                at,
            }
        }
    };
    let log = LogRow {
        at: crate::clock::now_rfc3339(),
        actor_id: job.owner_id.clone(),
        action: Action::Export.as_str(),
        resource_type: "export".into(),
        resource_id: job.id.clone(),
        ip: job.ip.clone(),
        request_id: job.request_id.clone(),
        patient_id: None,
        client_request_id: job.client_request_id.clone(),
        patients: Vec::new(),
    };
    let (id, runner_id) = (job.id.clone(), runner.to_string());
    let succeeded = matches!(end, JobEnd::Succeeded { .. });
    let finished = state
        .db
        .write(move |conn| {
            let held = records::finish_job(conn, &id, &runner_id, &end)?;
            if held && succeeded {
                // The file's last patients, in the commit that makes it downloadable.
                records::add_export_patients(conn, &id, &named)?;
                crate::access::records::append_access(conn, &[&log])?;
            }
            Ok(held)
        })
        .await;
    match finished {
        Ok(true) if succeeded => {
            tracing::info!(job = %job.id, kind = %job.kind, "export finished")
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(job = %job.id, error = ?e.problem().detail, "recording an export's end failed")
        }
    }
}

enum Written {
    Done {
        rows: i64,
        size: u64,
        /// The patients named since the last heartbeat, still to be recorded.
        patients: Vec<(String, i64)>,
    },
    /// Another runner took the job over (this one stalled past its lease): leave it.
    LostLease,
}

/// What the snapshot's reader hands the file's writer, in this order.
enum Piece {
    /// How many rows the export writes.
    Total(i64),
    /// The next rows in id order (never empty).
    Page(Vec<ExportRow>),
}

/// What the file's writer made of the pieces.
enum Copied {
    /// It wrote every page handed over (all of the export's, unless the reader failed: its
    /// unit's own answer says so).
    Pages {
        rows: i64,
        /// The patients named since the last heartbeat, still to be recorded.
        patients: Vec<(String, i64)>,
    },
    /// Another runner took the job over: leave it.
    LostLease,
}

/// Writes the job's rows to `part` from one snapshot, a page at a time (memory stays flat),
/// renewing the lease with the progress; renames the file into place once it is complete and
/// durable.
async fn write_file(
    state: &AppState,
    runner: &str,
    job: &JobRecord,
    part: &Path,
) -> Result<Written, ApiError> {
    let format = Format::parse(&job.format).ok_or_else(|| ApiError::internal("bad format"))?;
    if let Some(dir) = part.parent() {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || crate::private_files::create_dir_all(&dir))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
    }
    let file = crate::private_files::create_or_truncate(part)
        .await
        .map_err(ApiError::internal)?;
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    let scope = super::on_clinic_clocks(&state.db, &job.scope).await?;
    let page_rows = state.config.export_page_rows.clamp(1, 10_000);
    // One page may wait in the hand-over while the next is read and the last is written.
    let (hand_over, pieces) = sync_channel(1);
    let reading = state
        .db
        .read(move |conn| read_snapshot(conn, &scope, page_rows, &hand_over));
    let writing = write_pages(state, runner, job, format, pieces, &mut out);
    let (read, written) = tokio::join!(reading, writing);
    let (rows, patients) = match (read, written) {
        // The job is another runner's now (its file too): nothing here is this runner's to say.
        (_, Ok(Copied::LostLease)) => return Ok(Written::LostLease),
        // A reader that failed ended the hand-over early: its error, not a short file.
        (Err(e), _) | (Ok(()), Err(e)) => return Err(e),
        (Ok(()), Ok(Copied::Pages { rows, patients })) => (rows, patients),
    };
    out.flush().await.map_err(ApiError::internal)?;
    let file = out.into_inner();
    file.sync_all().await.map_err(ApiError::internal)?;
    let size = file.metadata().await.map_err(ApiError::internal)?.len();
    drop(file);
    let target = super::file_path(&state.config, &job.id, &job.format);
    tokio::fs::rename(part, &target)
        .await
        .map_err(ApiError::internal)?;
    Ok(Written::Done {
        rows,
        size,
        patients,
    })
}

/// The export's reads, as one read unit: the count, then each page, all from one snapshot,
/// each handed over as soon as it is read. The hand-over holds one piece, so the reader waits
/// while the writer is behind; once the writer stops taking pieces (it failed, or lost the
/// job), the next hand-over fails and the reading ends there.
fn read_snapshot(
    conn: &mut dyn Read,
    scope: &ExportScope,
    page_rows: u32,
    hand_over: &SyncSender<Piece>,
) -> Result<(), ApiError> {
    careq_store::jobs::snapshot(conn, |snap| {
        let total = records::export_count(snap, scope)?;
        if hand_over.send(Piece::Total(total)).is_err() {
            return Ok(());
        }
        let mut after = String::new();
        loop {
            let page = records::export_page(snap, scope, &after, page_rows)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.id.clone();
            if hand_over.send(Piece::Page(page)).is_err() {
                return Ok(());
            }
        }
    })
}

/// The next piece the reader hands over, or `None` once it is done (or failed). A read unit
/// runs no async code, so the hand-over is a plain channel, waited on off the async workers.
async fn next_piece(pieces: Receiver<Piece>) -> Result<(Receiver<Piece>, Option<Piece>), ApiError> {
    tokio::task::spawn_blocking(move || {
        let piece = pieces.recv().ok();
        (pieces, piece)
    })
    .await
    .map_err(ApiError::internal)
}

/// Writes the pieces the reader hands over into `out`, heartbeat by heartbeat. Returning drops
/// `pieces`, which stops the reader.
async fn write_pages(
    state: &AppState,
    runner: &str,
    job: &JobRecord,
    format: Format,
    pieces: Receiver<Piece>,
    out: &mut BufWriter<tokio::fs::File>,
) -> Result<Copied, ApiError> {
    let (mut pieces, first) = next_piece(pieces).await?;
    let Some(Piece::Total(total)) = first else {
        return Err(ApiError::internal(
            "the export's reader handed over no count",
        ));
    };
    // The patients the file names (id → the version of their record it holds), recorded with
    // each heartbeat, so a later seal, deletion or merge withdraws the file.
    let mut named: HashMap<String, i64> = HashMap::new();
    if !beat(state, runner, &job.id, 0, total, &mut named).await? {
        return Ok(Copied::LostLease);
    }
    let encoder = Encoder::new(&job.kind, format);
    let mut buf = Vec::with_capacity(64 * 1024);
    encoder.header(&mut buf);
    let mut rows = 0i64;
    let every = (lease(state) / 3).min(Duration::from_secs(1));
    let mut last_beat = Instant::now();
    loop {
        let (rest, piece) = next_piece(pieces).await?;
        pieces = rest;
        let Some(Piece::Page(page)) = piece else {
            break;
        };
        rows += page.len() as i64;
        for row in &page {
            encoder.row(row, &mut buf);
            if let Some((patient, version)) = &row.patient {
                named.entry(patient.clone()).or_insert(*version);
            }
        }
        out.write_all(&buf).await.map_err(ApiError::internal)?;
        buf.clear();
        if last_beat.elapsed() >= every || named.len() >= PATIENTS_HELD {
            last_beat = Instant::now();
            if !beat(state, runner, &job.id, rows, total, &mut named).await? {
                return Ok(Copied::LostLease);
            }
        }
    }
    out.write_all(&buf).await.map_err(ApiError::internal)?;
    Ok(Copied::Pages {
        rows,
        patients: named.into_iter().collect(),
    })
}

/// Records progress and the patients named since the last beat, and renews the lease; false
/// when this runner no longer holds the job.
async fn beat(
    state: &AppState,
    runner: &str,
    id: &str,
    rows: i64,
    total: i64,
    named: &mut HashMap<String, i64>,
) -> Result<bool, ApiError> {
    let (id, runner) = (id.to_string(), runner.to_string());
    let lease_ms = lease(state).as_millis() as i64;
    let patients: Vec<(String, i64)> = named.drain().collect();
    state
        .db
        .write(move |conn| {
            let progress = JobProgress {
                rows_written: rows,
                rows_total: Some(total),
                lease_until: crate::clock::now_ms() + lease_ms,
                at: crate::clock::now_rfc3339(),
            };
            let held = records::job_progress(conn, &id, &runner, &progress)?;
            if held {
                records::add_export_patients(conn, &id, &patients)?;
            }
            Ok(held)
        })
        .await
}

/// Removes files whose retention ran out, and files withdrawn because a patient they name was
/// sealed, deleted or merged; their URLs then answer 410.
async fn sweep(state: &AppState) -> Result<(), ApiError> {
    let now = crate::clock::now_unix();
    let (expired, withdrawn) = state
        .db
        .read(move |conn| {
            let expired = records::expired_jobs(conn, now, SWEEP_BATCH)?;
            Ok((expired, records::withdrawn_jobs(conn, SWEEP_BATCH)?))
        })
        .await?;
    let each = expired
        .into_iter()
        .map(|(id, format)| (id, format, None))
        .chain(withdrawn.into_iter().map(|(i, f, why)| (i, f, Some(why))));
    for (id, format, why) in each {
        // One file that cannot be removed does not keep the others; the next sweep tries again.
        if let Err(e) = super::discard(&state.db, &state.config, &id, &format, why.as_deref()).await
        {
            tracing::warn!(job = %id, error = ?e, "removing an export file failed");
        }
    }
    Ok(())
}
