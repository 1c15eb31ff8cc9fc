"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 15:01:55.983000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("credits", sa.Numeric(precision=12, scale=2), server_default="0", nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("credits >= 0", name=op.f("ck_accounts_credits_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_table(
        "credit_cost_configs",
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("pricing", sa.String(length=32), server_default="per_unit", nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("unit_size", sa.Integer(), server_default="1", nullable=False),
        sa.Column("credits_per_unit", sa.Numeric(precision=10, scale=4), nullable=False),
        sa.Column(
            "credits_per_1k_tokens",
            sa.Numeric(precision=10, scale=4),
            server_default="0",
            nullable=False,
        ),
        sa.Column(
            "min_credits_per_call",
            sa.Numeric(precision=10, scale=4),
            server_default="0",
            nullable=False,
        ),
        sa.Column("budget_percentage", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "operation IN ('clustering', 'idea_generation', 'content_generation', 'image_prompt_extraction', 'image_generation')",
            name=op.f("ck_credit_cost_configs_operation_valid"),
        ),
        sa.CheckConstraint(
            "pricing IN ('per_unit', 'per_token')",
            name=op.f("ck_credit_cost_configs_pricing_valid"),
        ),
        sa.CheckConstraint(
            "budget_percentage BETWEEN 0 AND 100",
            name=op.f("ck_credit_cost_configs_budget_percentage_range"),
        ),
        sa.CheckConstraint(
            "credits_per_1k_tokens >= 0 AND min_credits_per_call >= 0",
            name=op.f("ck_credit_cost_configs_token_price"),
        ),
        sa.CheckConstraint(
            "credits_per_unit >= 0 AND unit_size > 0",
            name=op.f("ck_credit_cost_configs_unit_price"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_cost_configs")),
        sa.UniqueConstraint("operation", name=op.f("uq_credit_cost_configs_operation")),
    )
    op.create_table(
        "sites",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=2000), server_default="", nullable=False),
        sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_sites_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
    )
    op.create_index(op.f("ix_sites_account_id"), "sites", ["account_id"], unique=False)
    op.create_table(
        "users",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_users_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_index(op.f("ix_users_account_id"), "users", ["account_id"], unique=False)
    op.create_index(
        "uq_users_email_lower", "users", [sa.literal_column("lower(email)")], unique=True
    )
    op.create_table(
        "api_keys",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), server_default="default", nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_api_keys_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_index(op.f("ix_api_keys_account_id"), "api_keys", ["account_id"], unique=False)
    op.create_index(op.f("ix_api_keys_user_id"), "api_keys", ["user_id"], unique=False)
    op.create_table(
        "automation_configs",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("frequency", sa.String(length=32), server_default="daily", nullable=False),
        sa.Column("scheduled_time", sa.Time(), server_default="02:00", nullable=False),
        sa.Column("weekly_day", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("monthly_day", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("stage_1_batch_size", sa.Integer(), server_default="20", nullable=False),
        sa.Column("stage_2_batch_size", sa.Integer(), server_default="1", nullable=False),
        sa.Column("stage_3_batch_size", sa.Integer(), server_default="20", nullable=False),
        sa.Column("stage_4_batch_size", sa.Integer(), server_default="1", nullable=False),
        sa.Column("stage_5_batch_size", sa.Integer(), server_default="1", nullable=False),
        sa.Column("stage_6_batch_size", sa.Integer(), server_default="1", nullable=False),
        sa.Column("within_stage_delay", sa.Integer(), server_default="3", nullable=False),
        sa.Column("between_stage_delay", sa.Integer(), server_default="5", nullable=False),
        sa.Column("stage_1_enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("stage_2_enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("stage_3_enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("stage_4_enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("stage_5_enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("stage_6_enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("stage_7_enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("max_keywords_per_run", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_clusters_per_run", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_ideas_per_run", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_tasks_per_run", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_content_per_run", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_images_per_run", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_approvals_per_run", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "max_credits_per_run",
            sa.Numeric(precision=12, scale=2),
            server_default="0",
            nullable=False,
        ),
        sa.Column("ai_concurrency", sa.Integer(), server_default="4", nullable=False),
        sa.Column("max_in_article_images", sa.Integer(), server_default="2", nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "frequency IN ('daily', 'weekly', 'monthly')",
            name=op.f("ck_automation_configs_frequency_valid"),
        ),
        sa.CheckConstraint(
            "ai_concurrency BETWEEN 1 AND 64",
            name=op.f("ck_automation_configs_ai_concurrency_range"),
        ),
        sa.CheckConstraint(
            "max_approvals_per_run >= 0",
            name=op.f("ck_automation_configs_max_approvals_not_negative"),
        ),
        sa.CheckConstraint(
            "max_clusters_per_run >= 0",
            name=op.f("ck_automation_configs_max_clusters_not_negative"),
        ),
        sa.CheckConstraint(
            "max_content_per_run >= 0", name=op.f("ck_automation_configs_max_content_not_negative")
        ),
        sa.CheckConstraint(
            "max_credits_per_run >= 0", name=op.f("ck_automation_configs_max_credits_not_negative")
        ),
        sa.CheckConstraint(
            "max_ideas_per_run >= 0", name=op.f("ck_automation_configs_max_ideas_not_negative")
        ),
        sa.CheckConstraint(
            "max_images_per_run >= 0", name=op.f("ck_automation_configs_max_images_not_negative")
        ),
        sa.CheckConstraint(
            "max_in_article_images BETWEEN 0 AND 10",
            name=op.f("ck_automation_configs_in_article_images"),
        ),
        sa.CheckConstraint(
            "max_keywords_per_run >= 0",
            name=op.f("ck_automation_configs_max_keywords_not_negative"),
        ),
        sa.CheckConstraint(
            "max_tasks_per_run >= 0", name=op.f("ck_automation_configs_max_tasks_not_negative")
        ),
        sa.CheckConstraint(
            "monthly_day BETWEEN 1 AND 31", name=op.f("ck_automation_configs_monthly_day_range")
        ),
        sa.CheckConstraint(
            "stage_1_batch_size BETWEEN 1 AND 1000",
            name=op.f("ck_automation_configs_stage_1_batch"),
        ),
        sa.CheckConstraint(
            "stage_2_batch_size BETWEEN 1 AND 1000",
            name=op.f("ck_automation_configs_stage_2_batch"),
        ),
        sa.CheckConstraint(
            "stage_3_batch_size BETWEEN 1 AND 1000",
            name=op.f("ck_automation_configs_stage_3_batch"),
        ),
        sa.CheckConstraint(
            "stage_4_batch_size BETWEEN 1 AND 1000",
            name=op.f("ck_automation_configs_stage_4_batch"),
        ),
        sa.CheckConstraint(
            "stage_5_batch_size BETWEEN 1 AND 1000",
            name=op.f("ck_automation_configs_stage_5_batch"),
        ),
        sa.CheckConstraint(
            "stage_6_batch_size BETWEEN 1 AND 1000",
            name=op.f("ck_automation_configs_stage_6_batch"),
        ),
        sa.CheckConstraint(
            "weekly_day BETWEEN 0 AND 6", name=op.f("ck_automation_configs_weekly_day_range")
        ),
        sa.CheckConstraint(
            "within_stage_delay >= 0 AND between_stage_delay >= 0",
            name=op.f("ck_automation_configs_delays"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_automation_configs_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_automation_configs_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_configs")),
        sa.UniqueConstraint("site_id", name=op.f("uq_automation_configs_site_id")),
    )
    op.create_index(
        op.f("ix_automation_configs_account_id"), "automation_configs", ["account_id"], unique=False
    )
    op.create_table(
        "automation_runs",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=False),
        sa.Column("trigger_type", sa.String(length=32), server_default="manual", nullable=False),
        sa.Column("status", sa.String(length=32), server_default="running", nullable=False),
        sa.Column("current_stage", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "total_credits_used",
            sa.Numeric(precision=12, scale=2),
            server_default="0",
            nullable=False,
        ),
        sa.Column("initial_snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("stage_1_result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("stage_2_result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("stage_3_result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("stage_4_result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("stage_5_result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("stage_6_result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("stage_7_result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("stopped_reason", sa.String(length=32), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fence", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("slice", sa.Integer(), server_default="0", nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.CheckConstraint(
            "status IN ('running', 'paused', 'cancelled', 'completed', 'failed')",
            name=op.f("ck_automation_runs_status_valid"),
        ),
        sa.CheckConstraint(
            "stopped_reason IS NULL OR stopped_reason IN ('completed', 'cancelled', 'credit_budget_reached', 'insufficient_credits', 'failed')",
            name=op.f("ck_automation_runs_stopped_reason_valid"),
        ),
        sa.CheckConstraint(
            "trigger_type IN ('manual', 'scheduled')",
            name=op.f("ck_automation_runs_trigger_type_valid"),
        ),
        sa.CheckConstraint(
            "current_stage BETWEEN 1 AND 7", name=op.f("ck_automation_runs_current_stage_range")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_automation_runs_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_automation_runs_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_runs")),
        sa.UniqueConstraint("run_id", name=op.f("uq_automation_runs_run_id")),
    )
    op.create_index(
        op.f("ix_automation_runs_account_id"), "automation_runs", ["account_id"], unique=False
    )
    op.create_index(
        op.f("ix_automation_runs_site_id"), "automation_runs", ["site_id"], unique=False
    )
    op.create_index(
        "ix_automation_runs_site_id_started_at",
        "automation_runs",
        ["site_id", "started_at"],
        unique=False,
    )
    op.create_index(
        "uq_automation_runs_one_active_per_site",
        "automation_runs",
        ["site_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('running', 'paused')"),
    )
    op.create_table(
        "clusters",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("keywords_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=32), server_default="new", nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("status IN ('new', 'mapped')", name=op.f("ck_clusters_status_valid")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_clusters_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_clusters_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clusters")),
    )
    op.create_index(op.f("ix_clusters_account_id"), "clusters", ["account_id"], unique=False)
    op.create_index(op.f("ix_clusters_site_id"), "clusters", ["site_id"], unique=False)
    op.create_index(
        "uq_clusters_site_id_name_lower",
        "clusters",
        ["site_id", sa.literal_column("lower(name)")],
        unique=True,
    )
    op.create_table(
        "publishing_integrations",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), server_default="none", nullable=False),
        sa.Column("endpoint_url", sa.String(length=2000), nullable=True),
        sa.Column("username", sa.String(length=200), nullable=True),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('none', 'wordpress', 'webhook')",
            name=op.f("ck_publishing_integrations_kind_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_publishing_integrations_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_publishing_integrations_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publishing_integrations")),
        sa.UniqueConstraint("site_id", name=op.f("uq_publishing_integrations_site_id")),
    )
    op.create_index(
        op.f("ix_publishing_integrations_account_id"),
        "publishing_integrations",
        ["account_id"],
        unique=False,
    )
    op.create_table(
        "publishing_settings",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=False),
        sa.Column("auto_approval_enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("auto_publish_enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "scheduling_mode", sa.String(length=32), server_default="time_slots", nullable=False
        ),
        sa.Column(
            "publish_days",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default='["mon", "tue", "wed", "thu", "fri"]',
            nullable=False,
        ),
        sa.Column(
            "publish_time_slots",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default='["09:00", "14:00", "18:00"]',
            nullable=False,
        ),
        sa.Column("stagger_start_time", sa.Time(), server_default="09:00", nullable=False),
        sa.Column("stagger_end_time", sa.Time(), server_default="18:00", nullable=False),
        sa.Column("stagger_interval_minutes", sa.Integer(), server_default="15", nullable=False),
        sa.Column("daily_publish_target", sa.Integer(), server_default="3", nullable=False),
        sa.Column("weekly_publish_target", sa.Integer(), server_default="15", nullable=False),
        sa.Column("monthly_publish_target", sa.Integer(), server_default="50", nullable=False),
        sa.Column("queue_limit", sa.Integer(), server_default="100", nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "scheduling_mode IN ('time_slots', 'stagger', 'immediate')",
            name=op.f("ck_publishing_settings_scheduling_mode_valid"),
        ),
        sa.CheckConstraint(
            "daily_publish_target >= 0 AND weekly_publish_target >= 0 AND monthly_publish_target >= 0",
            name=op.f("ck_publishing_settings_targets_not_negative"),
        ),
        sa.CheckConstraint(
            "queue_limit >= 0", name=op.f("ck_publishing_settings_queue_limit_not_negative")
        ),
        sa.CheckConstraint(
            "stagger_interval_minutes BETWEEN 1 AND 1440",
            name=op.f("ck_publishing_settings_stagger_interval"),
        ),
        sa.CheckConstraint(
            "stagger_start_time < stagger_end_time",
            name=op.f("ck_publishing_settings_stagger_window"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_publishing_settings_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_publishing_settings_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publishing_settings")),
        sa.UniqueConstraint("site_id", name=op.f("uq_publishing_settings_site_id")),
    )
    op.create_index(
        op.f("ix_publishing_settings_account_id"),
        "publishing_settings",
        ["account_id"],
        unique=False,
    )
    op.create_table(
        "site_ai_budget_allocations",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=False),
        sa.Column("use_global_defaults", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "clustering_percentage",
            sa.Numeric(precision=5, scale=2),
            server_default="15",
            nullable=False,
        ),
        sa.Column(
            "idea_generation_percentage",
            sa.Numeric(precision=5, scale=2),
            server_default="10",
            nullable=False,
        ),
        sa.Column(
            "content_generation_percentage",
            sa.Numeric(precision=5, scale=2),
            server_default="40",
            nullable=False,
        ),
        sa.Column(
            "image_prompt_extraction_percentage",
            sa.Numeric(precision=5, scale=2),
            server_default="5",
            nullable=False,
        ),
        sa.Column(
            "image_generation_percentage",
            sa.Numeric(precision=5, scale=2),
            server_default="30",
            nullable=False,
        ),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "clustering_percentage + idea_generation_percentage + content_generation_percentage + image_prompt_extraction_percentage + image_generation_percentage = 100",
            name=op.f("ck_site_ai_budget_allocations_sums_to_100"),
        ),
        sa.CheckConstraint(
            "clustering_percentage BETWEEN 0 AND 100",
            name=op.f("ck_site_ai_budget_allocations_clustering_range"),
        ),
        sa.CheckConstraint(
            "content_generation_percentage BETWEEN 0 AND 100",
            name=op.f("ck_site_ai_budget_allocations_content_generation_range"),
        ),
        sa.CheckConstraint(
            "idea_generation_percentage BETWEEN 0 AND 100",
            name=op.f("ck_site_ai_budget_allocations_idea_generation_range"),
        ),
        sa.CheckConstraint(
            "image_generation_percentage BETWEEN 0 AND 100",
            name=op.f("ck_site_ai_budget_allocations_image_generation_range"),
        ),
        sa.CheckConstraint(
            "image_prompt_extraction_percentage BETWEEN 0 AND 100",
            name=op.f("ck_site_ai_budget_allocations_image_prompt_extraction_range"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_site_ai_budget_allocations_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_site_ai_budget_allocations_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_ai_budget_allocations")),
        sa.UniqueConstraint("site_id", name=op.f("uq_site_ai_budget_allocations_site_id")),
    )
    op.create_index(
        op.f("ix_site_ai_budget_allocations_account_id"),
        "site_ai_budget_allocations",
        ["account_id"],
        unique=False,
    )
    op.create_table(
        "content_ideas",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=False),
        sa.Column("cluster_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "outline", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("content_type", sa.String(length=50), server_default="post", nullable=False),
        sa.Column(
            "content_structure", sa.String(length=50), server_default="article", nullable=False
        ),
        sa.Column(
            "target_keywords",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("target_word_count", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=32), server_default="new", nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('new', 'queued')", name=op.f("ck_content_ideas_status_valid")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_content_ideas_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["clusters.id"],
            name=op.f("fk_content_ideas_cluster_id_clusters"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_content_ideas_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_ideas")),
    )
    op.create_index(
        op.f("ix_content_ideas_account_id"), "content_ideas", ["account_id"], unique=False
    )
    op.create_index(
        op.f("ix_content_ideas_cluster_id"), "content_ideas", ["cluster_id"], unique=False
    )
    op.create_index(op.f("ix_content_ideas_site_id"), "content_ideas", ["site_id"], unique=False)
    op.create_index(
        "ix_content_ideas_site_id_status", "content_ideas", ["site_id", "status"], unique=False
    )
    op.create_table(
        "credit_transactions",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=True),
        sa.Column("run_pk", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=True),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("balance_after", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=500), server_default="", nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.CheckConstraint(
            "kind IN ('topup', 'reserve', 'settle', 'release', 'adjustment')",
            name=op.f("ck_credit_transactions_kind_valid"),
        ),
        sa.CheckConstraint(
            "balance_after >= 0", name=op.f("ck_credit_transactions_balance_after_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_credit_transactions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_pk"],
            ["automation_runs.id"],
            name=op.f("fk_credit_transactions_run_pk_automation_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_credit_transactions_site_id_sites"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_transactions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_credit_transactions_idempotency_key")),
    )
    op.create_index(
        op.f("ix_credit_transactions_account_id"),
        "credit_transactions",
        ["account_id"],
        unique=False,
    )
    op.create_index(
        "ix_credit_transactions_account_id_id",
        "credit_transactions",
        ["account_id", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_credit_transactions_run_pk"), "credit_transactions", ["run_pk"], unique=False
    )
    op.create_index(
        op.f("ix_credit_transactions_site_id"), "credit_transactions", ["site_id"], unique=False
    )
    op.create_table(
        "keywords",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=False),
        sa.Column("keyword", sa.String(length=500), nullable=False),
        sa.Column("volume", sa.Integer(), nullable=True),
        sa.Column("difficulty", sa.Integer(), nullable=True),
        sa.Column("intent", sa.String(length=50), nullable=True),
        sa.Column("cluster_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=32), server_default="new", nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "keyword = btrim(keyword) AND keyword <> ''", name=op.f("ck_keywords_keyword_trimmed")
        ),
        sa.CheckConstraint("status IN ('new', 'mapped')", name=op.f("ck_keywords_status_valid")),
        sa.CheckConstraint(
            "difficulty IS NULL OR difficulty BETWEEN 0 AND 100",
            name=op.f("ck_keywords_difficulty_range"),
        ),
        sa.CheckConstraint(
            "volume IS NULL OR volume >= 0", name=op.f("ck_keywords_volume_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_keywords_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["clusters.id"],
            name=op.f("fk_keywords_cluster_id_clusters"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_keywords_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keywords")),
    )
    op.create_index(op.f("ix_keywords_account_id"), "keywords", ["account_id"], unique=False)
    op.create_index(op.f("ix_keywords_cluster_id"), "keywords", ["cluster_id"], unique=False)
    op.create_index(op.f("ix_keywords_site_id"), "keywords", ["site_id"], unique=False)
    op.create_index("ix_keywords_site_id_status", "keywords", ["site_id", "status"], unique=False)
    op.create_index(
        "uq_keywords_site_id_keyword_lower",
        "keywords",
        ["site_id", sa.literal_column("lower(keyword)")],
        unique=True,
    )
    op.create_table(
        "run_events",
        sa.Column("run_pk", sa.BigInteger(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("stage", sa.SmallInteger(), nullable=True),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("level", sa.String(length=10), server_default="info", nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_pk"],
            ["automation_runs.id"],
            name=op.f("fk_run_events_run_pk_automation_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_events")),
    )
    op.create_index("ix_run_events_run_pk_id", "run_events", ["run_pk", "id"], unique=False)
    op.create_table(
        "tasks",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=False),
        sa.Column("idea_id", sa.BigInteger(), nullable=True),
        sa.Column("cluster_id", sa.BigInteger(), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("status", sa.String(length=32), server_default="queued", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'completed', 'failed')", name=op.f("ck_tasks_status_valid")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_tasks_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["clusters.id"],
            name=op.f("fk_tasks_cluster_id_clusters"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["idea_id"],
            ["content_ideas.id"],
            name=op.f("fk_tasks_idea_id_content_ideas"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_tasks_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("idea_id", name=op.f("uq_tasks_idea_id")),
    )
    op.create_index(op.f("ix_tasks_account_id"), "tasks", ["account_id"], unique=False)
    op.create_index(op.f("ix_tasks_cluster_id"), "tasks", ["cluster_id"], unique=False)
    op.create_index(op.f("ix_tasks_site_id"), "tasks", ["site_id"], unique=False)
    op.create_index("ix_tasks_site_id_status", "tasks", ["site_id", "status"], unique=False)
    op.create_table(
        "contents",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("html", sa.Text(), server_default="", nullable=False),
        sa.Column("word_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("meta_title", sa.String(length=300), server_default="", nullable=False),
        sa.Column("meta_description", sa.String(length=500), server_default="", nullable=False),
        sa.Column("status", sa.String(length=32), server_default="draft", nullable=False),
        sa.Column(
            "site_status", sa.String(length=32), server_default="not_published", nullable=False
        ),
        sa.Column("scheduled_publish_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("external_url", sa.String(length=2000), nullable=True),
        sa.Column("publish_error", sa.Text(), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "site_status IN ('not_published', 'scheduled', 'publishing', 'published', 'failed')",
            name=op.f("ck_contents_site_status_valid"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'review', 'approved', 'rejected', 'published')",
            name=op.f("ck_contents_status_valid"),
        ),
        sa.CheckConstraint("word_count >= 0", name=op.f("ck_contents_word_count_not_negative")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_contents_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_contents_site_id_sites"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_contents_task_id_tasks"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contents")),
        sa.UniqueConstraint("task_id", name=op.f("uq_contents_task_id")),
    )
    op.create_index(op.f("ix_contents_account_id"), "contents", ["account_id"], unique=False)
    op.create_index(op.f("ix_contents_site_id"), "contents", ["site_id"], unique=False)
    op.create_index("ix_contents_site_id_status", "contents", ["site_id", "status"], unique=False)
    op.create_index(
        "ix_contents_site_status_scheduled_publish_at",
        "contents",
        ["site_status", "scheduled_publish_at"],
        unique=False,
    )
    op.create_table(
        "images",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=False),
        sa.Column("content_id", sa.BigInteger(), nullable=False),
        sa.Column("image_type", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("status", sa.String(length=32), server_default="pending", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "image_type IN ('featured', 'in_article')", name=op.f("ck_images_image_type_valid")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'generated', 'failed')", name=op.f("ck_images_status_valid")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_images_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["content_id"],
            ["contents.id"],
            name=op.f("fk_images_content_id_contents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_images_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
        sa.UniqueConstraint(
            "content_id",
            "image_type",
            "position",
            name=op.f("uq_images_content_id_image_type_position"),
        ),
    )
    op.create_index(op.f("ix_images_account_id"), "images", ["account_id"], unique=False)
    op.create_index(op.f("ix_images_content_id"), "images", ["content_id"], unique=False)
    op.create_index(op.f("ix_images_site_id"), "images", ["site_id"], unique=False)
    op.create_index("ix_images_site_id_status", "images", ["site_id", "status"], unique=False)
    _seed_credit_costs()


def _seed_credit_costs() -> None:
    """The SPEC's default prices and budget shares (SPEC section 8)."""
    table = sa.table(
        "credit_cost_configs",
        sa.column("operation", sa.String),
        sa.column("unit", sa.String),
        sa.column("unit_size", sa.Integer),
        sa.column("credits_per_unit", sa.Numeric),
        sa.column("budget_percentage", sa.Numeric),
    )
    op.bulk_insert(
        table,
        [
            {
                "operation": "clustering",
                "unit": "keyword",
                "unit_size": 5,
                "credits_per_unit": 1,
                "budget_percentage": 15,
            },
            {
                "operation": "idea_generation",
                "unit": "cluster",
                "unit_size": 1,
                "credits_per_unit": 2,
                "budget_percentage": 10,
            },
            {
                "operation": "content_generation",
                "unit": "word",
                "unit_size": 500,
                "credits_per_unit": 1,
                "budget_percentage": 40,
            },
            {
                "operation": "image_prompt_extraction",
                "unit": "prompt",
                "unit_size": 1,
                "credits_per_unit": 0.5,
                "budget_percentage": 5,
            },
            {
                "operation": "image_generation",
                "unit": "image",
                "unit_size": 1,
                "credits_per_unit": 2,
                "budget_percentage": 30,
            },
        ],
    )


def downgrade() -> None:
    op.drop_index("ix_images_site_id_status", table_name="images")
    op.drop_index(op.f("ix_images_site_id"), table_name="images")
    op.drop_index(op.f("ix_images_content_id"), table_name="images")
    op.drop_index(op.f("ix_images_account_id"), table_name="images")
    op.drop_table("images")
    op.drop_index("ix_contents_site_status_scheduled_publish_at", table_name="contents")
    op.drop_index("ix_contents_site_id_status", table_name="contents")
    op.drop_index(op.f("ix_contents_site_id"), table_name="contents")
    op.drop_index(op.f("ix_contents_account_id"), table_name="contents")
    op.drop_table("contents")
    op.drop_index("ix_tasks_site_id_status", table_name="tasks")
    op.drop_index(op.f("ix_tasks_site_id"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_cluster_id"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_account_id"), table_name="tasks")
    op.drop_table("tasks")
    op.drop_index("ix_run_events_run_pk_id", table_name="run_events")
    op.drop_table("run_events")
    op.drop_index("uq_keywords_site_id_keyword_lower", table_name="keywords")
    op.drop_index("ix_keywords_site_id_status", table_name="keywords")
    op.drop_index(op.f("ix_keywords_site_id"), table_name="keywords")
    op.drop_index(op.f("ix_keywords_cluster_id"), table_name="keywords")
    op.drop_index(op.f("ix_keywords_account_id"), table_name="keywords")
    op.drop_table("keywords")
    op.drop_index(op.f("ix_credit_transactions_site_id"), table_name="credit_transactions")
    op.drop_index(op.f("ix_credit_transactions_run_pk"), table_name="credit_transactions")
    op.drop_index("ix_credit_transactions_account_id_id", table_name="credit_transactions")
    op.drop_index(op.f("ix_credit_transactions_account_id"), table_name="credit_transactions")
    op.drop_table("credit_transactions")
    op.drop_index("ix_content_ideas_site_id_status", table_name="content_ideas")
    op.drop_index(op.f("ix_content_ideas_site_id"), table_name="content_ideas")
    op.drop_index(op.f("ix_content_ideas_cluster_id"), table_name="content_ideas")
    op.drop_index(op.f("ix_content_ideas_account_id"), table_name="content_ideas")
    op.drop_table("content_ideas")
    op.drop_index(
        op.f("ix_site_ai_budget_allocations_account_id"), table_name="site_ai_budget_allocations"
    )
    op.drop_table("site_ai_budget_allocations")
    op.drop_index(op.f("ix_publishing_settings_account_id"), table_name="publishing_settings")
    op.drop_table("publishing_settings")
    op.drop_index(
        op.f("ix_publishing_integrations_account_id"), table_name="publishing_integrations"
    )
    op.drop_table("publishing_integrations")
    op.drop_index("uq_clusters_site_id_name_lower", table_name="clusters")
    op.drop_index(op.f("ix_clusters_site_id"), table_name="clusters")
    op.drop_index(op.f("ix_clusters_account_id"), table_name="clusters")
    op.drop_table("clusters")
    op.drop_index(
        "uq_automation_runs_one_active_per_site",
        table_name="automation_runs",
        postgresql_where=sa.text("status IN ('running', 'paused')"),
    )
    op.drop_index("ix_automation_runs_site_id_started_at", table_name="automation_runs")
    op.drop_index(op.f("ix_automation_runs_site_id"), table_name="automation_runs")
    op.drop_index(op.f("ix_automation_runs_account_id"), table_name="automation_runs")
    op.drop_table("automation_runs")
    op.drop_index(op.f("ix_automation_configs_account_id"), table_name="automation_configs")
    op.drop_table("automation_configs")
    op.drop_index(op.f("ix_api_keys_user_id"), table_name="api_keys")
    op.drop_index(op.f("ix_api_keys_account_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index("uq_users_email_lower", table_name="users")
    op.drop_index(op.f("ix_users_account_id"), table_name="users")
    op.drop_table("users")
    op.drop_index(op.f("ix_sites_account_id"), table_name="sites")
    op.drop_table("sites")
    op.drop_table("credit_cost_configs")
    op.drop_table("accounts")
