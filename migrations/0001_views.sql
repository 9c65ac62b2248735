-- Stable read views over the local store; docs/store-schema.md documents them.
-- Float values: `value` is NULL for NaN (see `is_nan`), so comparisons never treat NaN as a number.
CREATE VIEW runs_view AS
SELECT r.id AS run_id, p.name AS project, r.name, r.description, r.state,
       r.created_at, r.ended_at, r.failure, r.fork_of, r.fork_step, r.host,
       (SELECT group_concat(tag, ',') FROM (SELECT tag FROM tags t WHERE t.run_id = r.id ORDER BY tag)) AS tags
FROM runs r JOIN projects p ON p.id = r.project_id;
--> statement-breakpoint
CREATE VIEW fields_view AS
SELECT f.run_id, p.name AS project, f.path, f.type, f.value, f.num, f.updated_at
FROM fields f JOIN runs r ON r.id = f.run_id JOIN projects p ON p.id = r.project_id;
--> statement-breakpoint
CREATE VIEW points_view AS
SELECT s.run_id, s.path, s.type, pt.step, pt.ts,
       CASE WHEN s.type = 'float' THEN pt.value END AS value,
       pt.flag = 1 AS is_nan,
       CASE WHEN s.type = 'float' THEN
         CASE pt.flag WHEN 1 THEN 'NaN' WHEN 2 THEN '-0'
           ELSE CASE WHEN pt.value = 9e999 THEN 'Infinity' WHEN pt.value = -9e999 THEN '-Infinity'
                ELSE CAST(pt.value AS TEXT) END END
       ELSE pt.text END AS text
FROM points pt JOIN series s ON s.id = pt.series_id;
--> statement-breakpoint
CREATE VIEW series_stats AS
SELECT s.run_id, s.path, s.type,
       count(pt.rowid) AS count,
       coalesce(sum(pt.flag = 1), 0) AS nan_count,
       min(pt.step) AS first_step,
       max(pt.step) AS last_step,
       CASE WHEN s.type = 'float' THEN min(pt.value) END AS min,
       CASE WHEN s.type = 'float' THEN max(pt.value) END AS max,
       (SELECT CASE WHEN s.type = 'float' THEN l.value ELSE l.text END FROM points l
         WHERE l.series_id = s.id ORDER BY l.step DESC, l.rowid DESC LIMIT 1) AS last
FROM series s LEFT JOIN points pt ON pt.series_id = s.id
GROUP BY s.id;
--> statement-breakpoint
CREATE VIEW tags_view AS
SELECT t.run_id, p.name AS project, t.tag
FROM tags t JOIN runs r ON r.id = t.run_id JOIN projects p ON p.id = r.project_id;
--> statement-breakpoint
CREATE VIEW files_view AS
SELECT f.run_id, p.name AS project, f.path, f.kind, f.size, f.file_count, f.manifest, f.logged_at
FROM files f JOIN runs r ON r.id = f.run_id JOIN projects p ON p.id = r.project_id;
