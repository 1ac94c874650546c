-- Duplicate patients are found by identity keys from this version on: given_norm and
-- family_norm hold each name folded, reduced to its confusable skeleton (Unicode TS #39) and
-- stripped of every code point that draws nothing (fillers, variation selectors, the braille
-- blank), no longer the plain folding. SQL cannot compute skeletons, so the rows stored before
-- are listed here; careq gives them their new keys right after migrating, before it serves,
-- taking each off this list in the same commit. Search keys (0014) are not changed.
CREATE TABLE patients_rekey (id TEXT PRIMARY KEY);
INSERT INTO patients_rekey (id) SELECT id FROM patients;
