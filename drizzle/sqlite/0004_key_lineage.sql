ALTER TABLE `api_keys` ADD `lineage_id` text;--> statement-breakpoint
CREATE INDEX `api_keys_lineage_idx` ON `api_keys` (`lineage_id`);