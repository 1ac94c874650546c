"""The insert ceiling (README → Performance, issue 25): how many durable patient inserts per second SQLite itself allows on this machine,
into careq's real patients table (all its indexes) plus one access-log row each, committed in
groups of 64 (WAL, synchronous=FULL), with keys spread like the bench's. Then the same with
only the indexes a minimal server would keep. Prints figures; asserts nothing.
usage: bench/insert_ceiling.py SEEDED.db [N]   (a database made by `careq bench-seed`; it is copied, not changed)"""
import os, random, shutil, sqlite3, sys, time

src = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
syll = ["ba", "be", "bi", "bo", "ka", "ke", "ki", "ko", "ma", "me", "mi", "mo", "ra", "re", "ro", "ta", "to", "ve", "vi"]
def name():
    return "".join(random.choice(syll) for _ in range(random.randint(2, 4)))

def run(path, label):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA cache_size=-32768")
    clinic = db.execute("SELECT id FROM clinics LIMIT 1").fetchone()[0]
    t0 = time.time(); done = 0
    while done < n:
        db.execute("BEGIN IMMEDIATE")
        for _ in range(64):
            pid = "pat_" + os.urandom(10).hex()
            g, f = name(), name()
            sk = f + "\x1f" + g + "\x1f" + pid
            now = "2026-12-08T01:00:00.000Z"
            db.execute("SAVEPOINT u")
            db.execute("""INSERT INTO patients (id, clinic_id, mrn, given_name, family_name, date_of_birth,
                sex, phone, email, given_norm, family_norm, sort_key, created_at, updated_at, given_key, family_key)
                VALUES (?,?,?,?,?,?,'female',?,NULL,?,?,?,?,?,?,?)""",
                (pid, clinic, "S" + os.urandom(6).hex(), g, f,
                 "19%02d-%02d-%02d" % (random.randint(30, 99), random.randint(1, 12), random.randint(1, 28)),
                 "+43%09d" % random.randint(0, 10**9), g, f, sk, now, now, g, f))
            db.execute("""INSERT INTO access_log (at, actor_id, action, resource_type, resource_id, ip, request_id, patient_id)
                VALUES (?, 'usr_x', 'create', 'patient', ?, '127.0.0.1', 'req', NULL)""", (now, pid))
            db.execute("RELEASE u")
            done += 1
        db.execute("COMMIT")
    dt = time.time() - t0
    print(f"{label}: {done} inserts in {dt:.1f} s = {done/dt:,.0f}/s")
    db.close()

work = src + ".spike"
shutil.copy(src, work)
run(work, "all of careq's patient indexes")
db = sqlite3.connect(work)
keep = {"patients_clinic_mrn", "patients_identity"}
for (idx,) in db.execute("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='patients' AND sql IS NOT NULL").fetchall():
    if idx not in keep:
        db.execute(f"DROP INDEX {idx}")
db.close()
run(work, "only the MRN and duplicate-check indexes (plus the id and sort key's own)")
os.remove(work)
