CREATE TABLE `api_key_changes` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`key_hash` text NOT NULL,
	`changed_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `api_key_changes_changed_at_idx` ON `api_key_changes` (`changed_at`);--> statement-breakpoint
CREATE TABLE `api_key_usage` (
	`key_id` text NOT NULL,
	`day` text NOT NULL,
	`request_count` integer NOT NULL,
	PRIMARY KEY(`key_id`, `day`)
);
--> statement-breakpoint
CREATE TABLE `api_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`project_id` text,
	`name` text NOT NULL,
	`environment` text NOT NULL,
	`scopes` text NOT NULL,
	`metadata` text NOT NULL,
	`key_hash` text NOT NULL,
	`key_prefix` text NOT NULL,
	`key_suffix` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`last_used_at` integer,
	`expires_at` integer,
	`revoked_at` integer,
	`replaced_by_key_id` text,
	`rotated_from_key_id` text,
	`grace_expires_at` integer,
	`rotation_interval_days` integer,
	`next_rotation_at` integer,
	`rotation_webhook_url` text,
	`rotation_webhook_secret` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_key_hash_idx` ON `api_keys` (`key_hash`);--> statement-breakpoint
CREATE INDEX `api_keys_tenant_created_idx` ON `api_keys` (`tenant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `api_keys_next_rotation_idx` ON `api_keys` (`next_rotation_at`);--> statement-breakpoint
CREATE TABLE `webhook_deliveries` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`key_id` text NOT NULL,
	`new_key_id` text,
	`event_type` text NOT NULL,
	`url` text NOT NULL,
	`payload` text,
	`status` text NOT NULL,
	`attempts` text NOT NULL,
	`next_attempt_at` integer,
	`locked_until` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `webhook_deliveries_due_idx` ON `webhook_deliveries` (`status`,`next_attempt_at`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_key_idx` ON `webhook_deliveries` (`tenant_id`,`key_id`);