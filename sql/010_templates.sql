-- Template notifications (issue 6, templates/): each clinic's settings per notification kind, the
-- API keys of the clinic's own systems, the integration events they posted (the idempotency key's
-- record) and the send log.

-- A clinic's setting for one kind of the catalog (templates/catalog.hpp): WeChat's template id,
-- our fields mapped onto the template's keywords (JSON [{"keyword":"thing1","value":"{{doctor}}"}],
-- validated when saved), the link (a URL, or a mini-program appid and page) and the switch.
CREATE TABLE IF NOT EXISTS template_settings (
    clinic_id BIGINT UNSIGNED NOT NULL,
    kind VARCHAR(32) NOT NULL,
    template_id VARCHAR(128) NOT NULL,
    keywords TEXT NOT NULL,
    url VARCHAR(512) NULL,
    mp_appid VARCHAR(32) NULL,
    mp_page VARCHAR(255) NULL,
    enabled TINYINT(1) NOT NULL DEFAULT 1,
    updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (clinic_id, kind),
    CONSTRAINT fk_template_settings_clinic FOREIGN KEY (clinic_id) REFERENCES clinics (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Keys of the clinic's systems for POST /api/integration/events. Only the key's SHA-256 is kept
-- (the key is 32 random bytes: a plain hash cannot be searched); `prefix` is its first characters,
-- for people to tell keys apart. A revoked key stops working at once.
CREATE TABLE IF NOT EXISTS api_keys (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    clinic_id BIGINT UNSIGNED NOT NULL,
    name VARCHAR(64) NOT NULL,
    prefix VARCHAR(16) NOT NULL,
    key_hash CHAR(64) CHARACTER SET ascii NOT NULL,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    revoked_at TIMESTAMP(3) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_api_keys_hash (key_hash),
    UNIQUE KEY uq_api_keys_name (clinic_id, name),
    CONSTRAINT fk_api_keys_clinic FOREIGN KEY (clinic_id) REFERENCES clinics (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per accepted event: the unique key on (clinic, idempotency key) makes a repeated post
-- of the same event do nothing and answer what the first one did (`result`, JSON). Rows are kept
-- (at least 7 days are promised; nothing deletes them yet). `request_hash` is the SHA-256 of the
-- event's canonical form: the same key with another event is refused.
CREATE TABLE IF NOT EXISTS integration_events (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    clinic_id BIGINT UNSIGNED NOT NULL,
    api_key_id BIGINT UNSIGNED NULL,
    idempotency_key VARCHAR(128) CHARACTER SET ascii NOT NULL,
    kind VARCHAR(32) NOT NULL,
    request_hash CHAR(64) CHARACTER SET ascii NOT NULL,
    result TEXT NULL,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    UNIQUE KEY uq_integration_events_key (clinic_id, idempotency_key),
    KEY ix_integration_events_time (clinic_id, created_at),
    CONSTRAINT fk_integration_events_clinic FOREIGN KEY (clinic_id) REFERENCES clinics (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The send log: one row per attempt to notify a fan (or per event that notified nobody). `state`
-- is what was decided when the event came: queued (an outbox row: its state says sent, failed
-- with an errcode or uncertain), skipped (the kind is switched off or not configured: `reason`),
-- no_recipient (the patient has no bound, following fan). `delivery` is what WeChat reported
-- later in TEMPLATESENDJOBFINISH (`delivery_status` verbatim): delivered or refused.
CREATE TABLE IF NOT EXISTS template_log (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    clinic_id BIGINT UNSIGNED NOT NULL,
    event_id BIGINT UNSIGNED NOT NULL,
    kind VARCHAR(32) NOT NULL,
    patient_id BIGINT UNSIGNED NULL,
    patient_name VARCHAR(64) NOT NULL DEFAULT '',
    account_id BIGINT UNSIGNED NULL,
    openid VARCHAR(128) NULL,
    template_id VARCHAR(128) NULL,
    state ENUM('queued', 'skipped', 'no_recipient') NOT NULL,
    reason VARCHAR(255) NULL,
    outbox_id BIGINT UNSIGNED NULL,
    delivery ENUM('delivered', 'refused') NULL,
    delivery_status VARCHAR(64) NULL,
    delivered_at TIMESTAMP(3) NULL,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    KEY ix_template_log_time (clinic_id, created_at, id),
    KEY ix_template_log_patient (clinic_id, patient_name, created_at),
    KEY ix_template_log_fan (clinic_id, openid, created_at),
    KEY ix_template_log_outbox (outbox_id),
    KEY ix_template_log_event (event_id),
    CONSTRAINT fk_template_log_clinic FOREIGN KEY (clinic_id) REFERENCES clinics (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- TEMPLATESENDJOBFINISH names the send by WeChat's msgid, which the outbox records.
CREATE INDEX IF NOT EXISTS ix_outbox_msgid ON outbox (account_id, wx_msgid);
