ALTER TABLE "api_key_usage" ADD COLUMN "rate_limited_count" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "api_key_usage" ADD COLUMN "credits_refused_count" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "rate_limits" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "allowed_ips" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "credits_remaining" bigint;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "credits_refill_amount" bigint;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "credits_refill_interval" text;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "credits_refilled_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "credits_version" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "disabled_at" timestamp (3) with time zone;