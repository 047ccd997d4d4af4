-- Inbound messages as WeChat delivered them (one row per message identity and account), the fans
-- who sent them, and the dead letters: correctly signed bodies that could not be decrypted or
-- parsed. Raw bodies are bytes (BLOB): users' odd bytes must never make an insert fail.
CREATE TABLE IF NOT EXISTS fans (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    account_id BIGINT UNSIGNED NOT NULL,
    openid VARCHAR(128) NOT NULL,
    subscribed TINYINT(1) NOT NULL DEFAULT 1,
    subscribe_scene VARCHAR(255) NULL,
    first_seen_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    last_message_at TIMESTAMP(3) NULL,
    unsubscribed_at TIMESTAMP(3) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_fans_account_openid (account_id, openid),
    CONSTRAINT fk_fans_account FOREIGN KEY (account_id) REFERENCES official_accounts (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS inbound_messages (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    account_id BIGINT UNSIGNED NOT NULL,
    identity_hash BINARY(32) NOT NULL,
    openid VARCHAR(128) NOT NULL,
    msg_type VARCHAR(64) NOT NULL,
    event VARCHAR(64) NULL,
    event_key TEXT NULL,
    wx_msg_id BIGINT UNSIGNED NULL,
    create_time BIGINT NOT NULL,
    content MEDIUMTEXT NULL,
    body_xml MEDIUMBLOB NOT NULL,
    received_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    insert_batch BIGINT UNSIGNED NOT NULL,
    routed_at TIMESTAMP(3) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_inbound_identity (identity_hash),  -- SHA-256 of account id and message identity
    KEY ix_inbound_fan (account_id, openid, id),
    KEY ix_inbound_unrouted (routed_at, id),
    CONSTRAINT fk_inbound_account FOREIGN KEY (account_id) REFERENCES official_accounts (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS dead_letters (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    account_id BIGINT UNSIGNED NOT NULL,
    reason VARCHAR(255) NOT NULL,
    query_string BLOB NOT NULL,
    body MEDIUMBLOB NOT NULL,
    received_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    KEY ix_dead_letters_account (account_id, id),
    CONSTRAINT fk_dead_letters_account FOREIGN KEY (account_id) REFERENCES official_accounts (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
