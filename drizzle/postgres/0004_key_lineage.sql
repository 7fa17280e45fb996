ALTER TABLE "api_keys" ADD COLUMN "lineage_id" text;--> statement-breakpoint
CREATE INDEX "api_keys_lineage_idx" ON "api_keys" USING btree ("lineage_id");