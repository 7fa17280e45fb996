ALTER TABLE `api_key_usage` ADD `rate_limited_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `api_key_usage` ADD `credits_refused_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `rate_limits` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `allowed_ips` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `credits_remaining` integer;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `credits_refill_amount` integer;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `credits_refill_interval` text;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `credits_refilled_at` integer;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `credits_version` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `disabled_at` integer;