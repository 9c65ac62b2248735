-- Fills the series summaries, writer rows and journal counts added by 0002 for stores written
-- before them, then rebuilds series_stats on the summaries and adds the fork and JSON views.
-- docs/store-schema.md documents every view.
UPDATE series SET
  point_count = (SELECT count(*) FROM points p WHERE p.series_id = series.id),
  nan_count = (SELECT count(*) FROM points p WHERE p.series_id = series.id AND p.flag = 1),
  min_value = CASE WHEN type = 'float' THEN (SELECT min(p.value) FROM points p WHERE p.series_id = series.id) END,
  max_value = CASE WHEN type = 'float' THEN (SELECT max(p.value) FROM points p WHERE p.series_id = series.id) END,
  first_step = (SELECT min(p.step) FROM points p WHERE p.series_id = series.id),
  last_step = (SELECT max(p.step) FROM points p WHERE p.series_id = series.id);
--> statement-breakpoint
UPDATE series SET (last_value, last_flag, last_text) = (
  SELECT p.value, p.flag, p.text FROM points p
  WHERE p.series_id = series.id ORDER BY p.step DESC, p.rowid DESC LIMIT 1
);
--> statement-breakpoint
UPDATE journal SET point_count = last_point - first_point + 1
WHERE kind = 'points' AND first_point IS NOT NULL AND last_point IS NOT NULL;
--> statement-breakpoint
-- Every point written before this migration is already covered by a journal entry.
INSERT OR REPLACE INTO meta (key, value)
SELECT 'sealed_point', CAST(coalesce(max(rowid), 0) AS TEXT) FROM points;
--> statement-breakpoint
INSERT OR IGNORE INTO run_writers (run_id, writer_id, host, pid, started_at, heartbeat_at)
SELECT id, 'before-writers', host, pid, created_at, coalesce(heartbeat_at, created_at)
FROM runs WHERE state = 'running';
--> statement-breakpoint
DROP VIEW series_stats;
--> statement-breakpoint
CREATE VIEW series_stats AS
SELECT s.run_id, s.path, s.type,
       s.point_count AS count,
       s.nan_count,
       s.first_step,
       s.last_step,
       CASE WHEN s.type = 'float' THEN s.min_value END AS min,
       CASE WHEN s.type = 'float' THEN s.max_value END AS max,
       CASE WHEN s.type = 'float' THEN s.last_value ELSE s.last_text END AS last,
       s.type = 'float' AND coalesce(s.last_flag, 0) = 1 AS last_is_nan,
       p.name AS project
FROM series s JOIN runs r ON r.id = s.run_id JOIN projects p ON p.id = r.project_id;
--> statement-breakpoint
-- One row per run with every field in one JSON object keyed by path, for pivots:
-- json_extract(fields, '$."parameters/lr"'). NaN and infinities are the strings 'NaN',
-- 'Infinity' and '-Infinity'; integers keep every digit.
CREATE VIEW fields_json_view AS
SELECT r.id AS run_id, p.name AS project, r.name, r.state,
       (SELECT json_group_object(f.path, CASE
           WHEN f.type IN ('int', 'bool', 'string_set') THEN json(f.value)
           WHEN f.type = 'float' AND f.value NOT IN ('NaN', 'Infinity', '-Infinity') THEN json(f.value)
           ELSE f.value END)
        FROM fields f WHERE f.run_id = r.id) AS fields
FROM runs r JOIN projects p ON p.id = r.project_id;
--> statement-breakpoint
-- Each run with itself (depth 0) and every run it was forked from; `until_step` is the highest
-- step inherited from that ancestor (NULL: all of the run's own points).
CREATE VIEW run_lineage AS
WITH RECURSIVE lineage(run_id, ancestor_id, depth, until_step) AS (
  SELECT id, id, 0, NULL FROM runs
  UNION ALL
  SELECT l.run_id, r.fork_of, l.depth + 1,
         CASE WHEN l.until_step IS NULL THEN r.fork_step ELSE min(l.until_step, r.fork_step) END
  FROM lineage l JOIN runs r ON r.id = l.ancestor_id
  WHERE r.fork_of IS NOT NULL AND r.fork_step IS NOT NULL AND l.depth < 64
)
SELECT run_id, ancestor_id, depth, until_step FROM lineage;
--> statement-breakpoint
-- A fork's series as its users see them: the ancestors' points up to the fork step, then its own.
CREATE VIEW lineage_points_view AS
SELECT l.run_id, l.ancestor_id AS source_run_id, l.depth, s.path, s.type, pt.step, pt.ts,
       CASE WHEN s.type = 'float' THEN pt.value END AS value,
       pt.flag = 1 AS is_nan,
       CASE WHEN s.type = 'float' THEN
         CASE pt.flag WHEN 1 THEN 'NaN' WHEN 2 THEN '-0'
           ELSE CASE WHEN pt.value = 9e999 THEN 'Infinity' WHEN pt.value = -9e999 THEN '-Infinity'
                ELSE CAST(pt.value AS TEXT) END END
       ELSE pt.text END AS text
FROM run_lineage l
JOIN series s ON s.run_id = l.ancestor_id
JOIN points pt ON pt.series_id = s.id
WHERE l.until_step IS NULL OR pt.step <= l.until_step;
