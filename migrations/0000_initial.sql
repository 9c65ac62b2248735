CREATE TABLE `fields` (
	`run_id` text NOT NULL,
	`path` text NOT NULL,
	`type` text NOT NULL,
	`value` text NOT NULL,
	`num` real,
	`updated_at` real NOT NULL,
	PRIMARY KEY(`run_id`, `path`),
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `files` (
	`run_id` text NOT NULL,
	`path` text NOT NULL,
	`kind` text NOT NULL,
	`manifest` text NOT NULL,
	`size` integer NOT NULL,
	`file_count` integer NOT NULL,
	`logged_at` real NOT NULL,
	PRIMARY KEY(`run_id`, `path`),
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `journal` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`op_id` text NOT NULL,
	`run_id` text NOT NULL,
	`kind` text NOT NULL,
	`payload` text,
	`first_point` integer,
	`last_point` integer,
	`created_at` real NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `journal_op_id_unique` ON `journal` (`op_id`);--> statement-breakpoint
CREATE INDEX `journal_run_idx` ON `journal` (`run_id`,`seq`);--> statement-breakpoint
CREATE TABLE `meta` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `points` (
	`series_id` integer NOT NULL,
	`step` real NOT NULL,
	`ts` real NOT NULL,
	`value` real,
	`flag` integer DEFAULT 0 NOT NULL,
	`text` text
);
--> statement-breakpoint
CREATE INDEX `points_series_step_idx` ON `points` (`series_id`,`step`);--> statement-breakpoint
CREATE TABLE `projects` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`created_at` real NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `projects_name_unique` ON `projects` (`name`);--> statement-breakpoint
CREATE TABLE `quarantine` (
	`remote` text NOT NULL,
	`run_id` text NOT NULL,
	`reason` text NOT NULL,
	`at` real NOT NULL,
	PRIMARY KEY(`remote`, `run_id`)
);
--> statement-breakpoint
CREATE TABLE `runs` (
	`id` text PRIMARY KEY NOT NULL,
	`project_id` integer NOT NULL,
	`name` text,
	`description` text,
	`state` text NOT NULL,
	`created_at` real NOT NULL,
	`ended_at` real,
	`heartbeat_at` real,
	`host` text,
	`pid` integer,
	`failure` text,
	`fork_of` text,
	`fork_step` real,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `runs_project_idx` ON `runs` (`project_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `series` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` text NOT NULL,
	`path` text NOT NULL,
	`type` text NOT NULL,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `series_run_path_idx` ON `series` (`run_id`,`path`);--> statement-breakpoint
CREATE TABLE `sync_cursors` (
	`remote` text PRIMARY KEY NOT NULL,
	`seq` integer NOT NULL,
	`updated_at` real NOT NULL
);
--> statement-breakpoint
CREATE TABLE `tags` (
	`run_id` text NOT NULL,
	`tag` text NOT NULL,
	PRIMARY KEY(`run_id`, `tag`),
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action
);
