-- As SQLite's 0016 (column types mirror its storage classes: BIGINT, TEXT).
-- Which patients each export file names, and the version of each patient's record the export
-- read. Once such a patient is sealed, deleted or merged (each bumps the version), the file no
-- longer matches what its owner may see and answers 410 (`jobs.withdrawn` says why; the file is
-- removed). Rows are written by the runner while it holds the job and go with the file. The
-- key is the one way in: a download's check starts from the few patients retired since its
-- export (`patients_retired`) and looks each up by (job, patient).
CREATE TABLE export_patients (
    job_id     TEXT COLLATE "C" NOT NULL REFERENCES jobs (id),
    patient_id TEXT COLLATE "C" NOT NULL,
    version    BIGINT NOT NULL,
    PRIMARY KEY (job_id, patient_id)
);
-- `withdrawn`: why the file was taken back (`sealed`, `deleted`, `merged`). `changes_since`: a
-- moment before the export's snapshot (its claim, less a margin for clocks of other
-- processes); only patients changed from then on can differ from what the file holds.
ALTER TABLE jobs ADD COLUMN withdrawn TEXT;
ALTER TABLE jobs ADD COLUMN changes_since TEXT COLLATE "C";
-- The patients who left the living (sealed, deleted or merged), by when they last changed: the
-- check of a download walks only those changed since its export, however many tombstones
-- accumulate.
CREATE INDEX patients_retired ON patients (updated_at)
    WHERE sealed_at IS NOT NULL OR deleted_at IS NOT NULL OR merged_into IS NOT NULL;
-- Files finished before this migration carry no list, so nothing could tell when one of them
-- names a patient sealed, deleted or merged later: they are withdrawn now (the runner's sweep
-- removes them; their URLs answer 410 saying to export again).
UPDATE jobs SET withdrawn = 'unlisted' WHERE state = 'succeeded' AND removed_at IS NULL;
