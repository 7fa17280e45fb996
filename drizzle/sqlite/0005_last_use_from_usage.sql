-- Hand-written. A usage flush no longer moves api_keys.last_used_at: with keys drawn at random,
-- that rewrote a page of the wide api_keys table per key per flush, the very pages a verification
-- miss reads. A key's last use is now read from api_key_usage (its latest day's last_used_at, see
-- latestUse in src/store/conditions.ts); api_keys.last_used_at keeps what the triggers recorded
-- before this migration and is read as a floor.
DROP TRIGGER IF EXISTS `api_key_usage_last_use_insert`;
--> statement-breakpoint
DROP TRIGGER IF EXISTS `api_key_usage_last_use_update`;
--> statement-breakpoint
-- The same table WITHOUT ROWID: a row lives in its primary key's B-tree, so a flush upserts one
-- B-tree instead of two (the rowid table and its (key_id, day) index), and a key's latest day is
-- one seek that holds the row. drizzle-kit does not model WITHOUT ROWID; its snapshot is unchanged.
CREATE TABLE `__new_api_key_usage` (
	`key_id` text NOT NULL,
	`day` text NOT NULL,
	`request_count` integer NOT NULL,
	`last_used_at` integer,
	`rate_limited_count` integer DEFAULT 0 NOT NULL,
	`credits_refused_count` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`key_id`, `day`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `__new_api_key_usage` (`key_id`, `day`, `request_count`, `last_used_at`, `rate_limited_count`, `credits_refused_count`)
	SELECT `key_id`, `day`, `request_count`, `last_used_at`, `rate_limited_count`, `credits_refused_count` FROM `api_key_usage`;
--> statement-breakpoint
DROP TABLE `api_key_usage`;
--> statement-breakpoint
ALTER TABLE `__new_api_key_usage` RENAME TO `api_key_usage`;
