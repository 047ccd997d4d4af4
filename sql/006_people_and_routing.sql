-- People and places (stores, agents), who owns which fan (consultant, exclusive agent, store), each
-- clinic's routing settings (DESIGN.md §5: modes, auto-reply switches and texts, working hours,
-- durations), the routing receipt of every routed message, and conversation sessions.
CREATE TABLE IF NOT EXISTS stores (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    clinic_id BIGINT UNSIGNED NOT NULL,
    name VARCHAR(128) NOT NULL,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    UNIQUE KEY uq_stores_clinic_name (clinic_id, name),
    CONSTRAINT fk_stores_clinic FOREIGN KEY (clinic_id) REFERENCES clinics (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- An agent signs in with the clinic's name and their own name. password_hash is
-- "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>" (gateway/password.hpp).
CREATE TABLE IF NOT EXISTS agents (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    clinic_id BIGINT UNSIGNED NOT NULL,
    store_id BIGINT UNSIGNED NULL,
    name VARCHAR(64) NOT NULL,
    role ENUM('admin', 'front_desk', 'consultant', 'service') NOT NULL,
    can_receive TINYINT(1) NOT NULL DEFAULT 1,  -- the "receive online consultation" permission
    password_hash VARCHAR(255) NOT NULL,
    active TINYINT(1) NOT NULL DEFAULT 1,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    UNIQUE KEY uq_agents_clinic_name (clinic_id, name),
    KEY ix_agents_store (store_id),
    CONSTRAINT fk_agents_clinic FOREIGN KEY (clinic_id) REFERENCES clinics (id),
    CONSTRAINT fk_agents_store FOREIGN KEY (store_id) REFERENCES stores (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

ALTER TABLE fans
    ADD COLUMN IF NOT EXISTS consultant_agent_id BIGINT UNSIGNED NULL,
    ADD COLUMN IF NOT EXISTS exclusive_agent_id BIGINT UNSIGNED NULL,
    ADD COLUMN IF NOT EXISTS store_id BIGINT UNSIGNED NULL;

-- One row per clinic; a clinic without a row routes with the defaults below.
CREATE TABLE IF NOT EXISTS clinic_routing (
    clinic_id BIGINT UNSIGNED NOT NULL,
    consultant_mode TINYINT(1) NOT NULL DEFAULT 0,
    exclusive_mode TINYINT(1) NOT NULL DEFAULT 0,
    chain_store_mode TINYINT(1) NOT NULL DEFAULT 0,
    auto_reply_enabled TINYINT(1) NOT NULL DEFAULT 1,
    welcome_enabled TINYINT(1) NOT NULL DEFAULT 1,
    welcome_text VARCHAR(600) NOT NULL DEFAULT '您好，欢迎关注！请直接发送消息，我们的客服会尽快回复您。',
    consultant_offline_enabled TINYINT(1) NOT NULL DEFAULT 1,
    consultant_offline_text VARCHAR(600) NOT NULL DEFAULT '您的专属顾问暂时不在线，上线后会第一时间回复您。',
    after_hours_enabled TINYINT(1) NOT NULL DEFAULT 1,
    after_hours_text VARCHAR(600) NOT NULL DEFAULT '您好，现在是非工作时间，我们上班后会尽快回复您。',
    no_agent_enabled TINYINT(1) NOT NULL DEFAULT 1,
    no_agent_text VARCHAR(600) NOT NULL DEFAULT '您好，客服暂时不在线，稍后会尽快回复您。',
    timeout_enabled TINYINT(1) NOT NULL DEFAULT 1,
    timeout_text VARCHAR(600) NOT NULL DEFAULT '抱歉让您久等了，客服正在忙碌中，请稍候。',
    utc_offset_minutes INT NOT NULL DEFAULT 480,
    work_hours TEXT NOT NULL DEFAULT ('[]'),    -- JSON: [{"weekdays":[1,2,3,4,5],"start":"09:00","end":"18:00"}]
    closed_dates TEXT NOT NULL DEFAULT ('[]'),  -- JSON: ["2027-01-01"]
    suppression_window_s INT UNSIGNED NOT NULL DEFAULT 600,
    timeout_s INT UNSIGNED NOT NULL DEFAULT 300,
    lock_ttl_s INT UNSIGNED NOT NULL DEFAULT 600,
    updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (clinic_id),
    CONSTRAINT fk_clinic_routing_clinic FOREIGN KEY (clinic_id) REFERENCES clinics (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- What routing decided for a stored message (once per message: the primary key).
CREATE TABLE IF NOT EXISTS routing_receipts (
    message_id BIGINT UNSIGNED NOT NULL,
    clinic_id BIGINT UNSIGNED NOT NULL,
    rule VARCHAR(32) NOT NULL,
    owner_agent_id BIGINT UNSIGNED NULL,
    targets TEXT NOT NULL,        -- JSON array of agent ids notified
    auto_reply VARCHAR(32) NULL,  -- the auto-reply kind sent, if any
    receipt MEDIUMTEXT NULL,      -- JSON: the full receipt (candidates, exclusions and reasons)
    decided_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (message_id),
    KEY ix_routing_receipts_clinic (clinic_id, decided_at),
    CONSTRAINT fk_routing_receipts_message FOREIGN KEY (message_id) REFERENCES inbound_messages (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Conversation sessions as history (the live lock is in Redis).
CREATE TABLE IF NOT EXISTS chat_sessions (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    account_id BIGINT UNSIGNED NOT NULL,
    openid VARCHAR(128) NOT NULL,
    agent_id BIGINT UNSIGNED NOT NULL,
    started_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    ended_at TIMESTAMP(3) NULL,
    end_reason VARCHAR(32) NULL,  -- silence, ended, transferred, offline
    PRIMARY KEY (id),
    KEY ix_chat_sessions_fan (account_id, openid, id),
    KEY ix_chat_sessions_agent (agent_id, id),
    CONSTRAINT fk_chat_sessions_agent FOREIGN KEY (agent_id) REFERENCES agents (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
