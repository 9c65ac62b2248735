CREATE TABLE `run_writers` (
	`run_id` text NOT NULL,
	`writer_id` text NOT NULL,
	`host` text,
	`pid` integer,
	`started_at` real NOT NULL,
	`heartbeat_at` real NOT NULL,
	`ended_at` real,
	`end_state` text,
	`failure` text,
	PRIMARY KEY(`run_id`, `writer_id`),
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `run_writers_ended_idx` ON `run_writers` (`ended_at`);--> statement-breakpoint
CREATE TABLE `series_blocks` (
	`series_id` integer NOT NULL,
	`first_point` integer NOT NULL,
	`last_point` integer NOT NULL,
	`point_count` integer NOT NULL,
	`data` blob NOT NULL,
	PRIMARY KEY(`series_id`, `first_point`)
);
--> statement-breakpoint
ALTER TABLE `journal` ADD `point_count` integer;--> statement-breakpoint
ALTER TABLE `series` ADD `point_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `series` ADD `nan_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `series` ADD `min_value` real;--> statement-breakpoint
ALTER TABLE `series` ADD `max_value` real;--> statement-breakpoint
ALTER TABLE `series` ADD `first_step` real;--> statement-breakpoint
ALTER TABLE `series` ADD `last_step` real;--> statement-breakpoint
ALTER TABLE `series` ADD `last_value` real;--> statement-breakpoint
ALTER TABLE `series` ADD `last_flag` integer;--> statement-breakpoint
ALTER TABLE `series` ADD `last_text` text;--> statement-breakpoint
ALTER TABLE `series` ADD `packed_through` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `series` ADD `packed_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX `series_path_idx` ON `series` (`path`);