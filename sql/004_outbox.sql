-- The durable outbox (wechat/outbox.hpp): every outbound WeChat message is a row here before it is
-- sent. States: queued (waiting, possibly for a retry at next_attempt_at), sending (claimed by a
-- worker: claim_token, claimed_at), sent, failed (WeChat refused it, or retries ran out:
-- last_errcode, last_error), uncertain (it may have reached the fan: a person decides, never
-- resent automatically). The body is the JSON WeChat takes, as bytes.
CREATE TABLE IF NOT EXISTS outbox (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    account_id BIGINT UNSIGNED NOT NULL,
    openid VARCHAR(128) NOT NULL,
    kind VARCHAR(32) NOT NULL,
    api_path VARCHAR(255) CHARACTER SET ascii NOT NULL,
    body MEDIUMBLOB NOT NULL,
    origin VARCHAR(64) NOT NULL DEFAULT '',
    state ENUM('queued', 'sending', 'sent', 'failed', 'uncertain') NOT NULL DEFAULT 'queued',
    attempts INT UNSIGNED NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    claim_token BIGINT UNSIGNED NULL,
    claimed_at TIMESTAMP(3) NULL,
    last_errcode INT NULL,
    last_error VARCHAR(255) NULL,
    wx_msgid BIGINT UNSIGNED NULL,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    sent_at TIMESTAMP(3) NULL,
    updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    KEY ix_outbox_due (state, next_attempt_at, id),
    KEY ix_outbox_fan (account_id, openid, id),
    KEY ix_outbox_claim (claim_token),
    CONSTRAINT fk_outbox_account FOREIGN KEY (account_id) REFERENCES official_accounts (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
