ALTER TABLE `api_key_usage` ADD `last_used_at` integer;
--> statement-breakpoint
-- Hand-written (drizzle-kit does not model triggers). A usage flush is one INSERT ... ON CONFLICT into
-- api_key_usage; these move api_keys.last_used_at forward from the day's latest use, inside that
-- same statement. last_used_at never moves back, whatever order flushes from several processes land in.
CREATE TRIGGER `api_key_usage_last_use_insert` AFTER INSERT ON `api_key_usage`
WHEN NEW.`last_used_at` IS NOT NULL
BEGIN
	UPDATE `api_keys` SET `last_used_at` = NEW.`last_used_at`
	WHERE `id` = NEW.`key_id` AND (`last_used_at` IS NULL OR `last_used_at` < NEW.`last_used_at`);
END;
--> statement-breakpoint
CREATE TRIGGER `api_key_usage_last_use_update` AFTER UPDATE OF `last_used_at` ON `api_key_usage`
WHEN NEW.`last_used_at` IS NOT NULL
BEGIN
	UPDATE `api_keys` SET `last_used_at` = NEW.`last_used_at`
	WHERE `id` = NEW.`key_id` AND (`last_used_at` IS NULL OR `last_used_at` < NEW.`last_used_at`);
END;
