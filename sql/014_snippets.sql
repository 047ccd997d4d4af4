-- Snippets (quick replies the console inserts into a reply; issue 5, issue 6 "clinic snippet
-- groups"): groups of the clinic, managed by its admins, each with its snippets in order, and each
-- agent's own snippets in order. Limits (50 groups, 200 snippets per group or agent, 1-1000
-- characters) are the gateway's (docs/api.md "Snippets").
CREATE TABLE IF NOT EXISTS snippet_groups (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    clinic_id BIGINT UNSIGNED NOT NULL,
    name VARCHAR(64) NOT NULL,
    position INT UNSIGNED NOT NULL,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    UNIQUE KEY uq_snippet_groups_name (clinic_id, name),
    KEY ix_snippet_groups_order (clinic_id, position),
    CONSTRAINT fk_snippet_groups_clinic FOREIGN KEY (clinic_id) REFERENCES clinics (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A snippet belongs to a clinic group (group_id) or to an agent (agent_id), never both; a group's
-- snippets go with it.
CREATE TABLE IF NOT EXISTS snippets (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    clinic_id BIGINT UNSIGNED NOT NULL,
    group_id BIGINT UNSIGNED NULL,
    agent_id BIGINT UNSIGNED NULL,
    position INT UNSIGNED NOT NULL,
    text TEXT NOT NULL,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    KEY ix_snippets_group (group_id, position),
    KEY ix_snippets_agent (agent_id, position),
    CONSTRAINT fk_snippets_clinic FOREIGN KEY (clinic_id) REFERENCES clinics (id),
    CONSTRAINT fk_snippets_group FOREIGN KEY (group_id) REFERENCES snippet_groups (id) ON DELETE CASCADE,
    CONSTRAINT fk_snippets_agent FOREIGN KEY (agent_id) REFERENCES agents (id),
    CONSTRAINT ck_snippets_owner CHECK ((group_id IS NULL) <> (agent_id IS NULL))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
