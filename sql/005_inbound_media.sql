-- Inbound media (image, voice, video, shortvideo): WeChat keeps a message's media for 3 days, so
-- the gateway fetches it through /cgi-bin/media/get soon after arrival and keeps it under its media
-- directory. A row is written in the same transaction as its message (nothing to fetch is ever
-- forgotten) and moves pending → fetching (claimed: claim_token, claimed_at) → fetched (path,
-- content_type, size, sha256; or source_url for videos, which WeChat hands out as a link), or
-- failed (WeChat says the media does not exist) / expired (not fetched within its 3 days).
CREATE TABLE IF NOT EXISTS inbound_media (
    message_id BIGINT UNSIGNED NOT NULL,
    account_id BIGINT UNSIGNED NOT NULL,
    media_id VARCHAR(255) CHARACTER SET ascii NOT NULL,
    kind VARCHAR(16) NOT NULL,
    state ENUM('pending', 'fetching', 'fetched', 'failed', 'expired') NOT NULL DEFAULT 'pending',
    attempts INT UNSIGNED NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    expires_at TIMESTAMP(3) NOT NULL,
    claim_token BIGINT UNSIGNED NULL,
    claimed_at TIMESTAMP(3) NULL,
    path VARCHAR(512) NULL,
    source_url TEXT NULL,
    content_type VARCHAR(128) NULL,
    size BIGINT UNSIGNED NULL,
    sha256 BINARY(32) NULL,
    last_errcode INT NULL,
    last_error VARCHAR(255) NULL,
    fetched_at TIMESTAMP(3) NULL,
    PRIMARY KEY (message_id),
    KEY ix_inbound_media_due (state, next_attempt_at),
    CONSTRAINT fk_inbound_media_message FOREIGN KEY (message_id) REFERENCES inbound_messages (id),
    CONSTRAINT fk_inbound_media_account FOREIGN KEY (account_id) REFERENCES official_accounts (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
