-- Replies waiting for a fan whose customer-service window is closed (DESIGN.md §5, docs/api.md
-- "Send"): the agent's text is kept here and the fan gets the clinic's "reply waiting" template
-- notification, whose link (/reply/<token>, the token an HMAC of `id`: nothing secret is stored)
-- opens a mobile page with the full text until `expires_at`. `read_at` is when the fan first
-- opened it. `outbox_id` / `template_log_id` name the notice's send. A notice that WeChat refuses
-- for the account's template rights removes the row (the agent is told the fan must write first).
CREATE TABLE IF NOT EXISTS waiting_replies (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    clinic_id BIGINT UNSIGNED NOT NULL,
    account_id BIGINT UNSIGNED NOT NULL,
    openid VARCHAR(128) NOT NULL,
    agent_id BIGINT UNSIGNED NULL,
    agent_name VARCHAR(64) NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    outbox_id BIGINT UNSIGNED NULL,
    template_log_id BIGINT UNSIGNED NULL,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    expires_at TIMESTAMP(3) NOT NULL,
    read_at TIMESTAMP(3) NULL,
    PRIMARY KEY (id),
    KEY ix_waiting_replies_fan (account_id, openid, id),
    KEY ix_waiting_replies_clinic (clinic_id, created_at),
    CONSTRAINT fk_waiting_replies_clinic FOREIGN KEY (clinic_id) REFERENCES clinics (id),
    CONSTRAINT fk_waiting_replies_account FOREIGN KEY (account_id) REFERENCES official_accounts (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
