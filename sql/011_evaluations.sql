-- Patient evaluations (issue 6, seeds/003 "服务评价"): a clinic's own attributes besides the
-- default four, one row per invitation (created when a visit finishes, answered once through
-- /eval/<token>), one row per rated attribute. The link's token is an HMAC of the row's id
-- (gateway/evaluations.hpp): nothing secret is stored here.
CREATE TABLE IF NOT EXISTS evaluation_attributes (
    clinic_id BIGINT UNSIGNED NOT NULL,
    position TINYINT UNSIGNED NOT NULL,  -- 0-based order after the default attributes
    name VARCHAR(64) NOT NULL,           -- at most 64 characters; at most 10 per clinic
    PRIMARY KEY (clinic_id, position),
    CONSTRAINT fk_evaluation_attributes_clinic FOREIGN KEY (clinic_id) REFERENCES clinics (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS evaluations (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    clinic_id BIGINT UNSIGNED NOT NULL,
    account_id BIGINT UNSIGNED NOT NULL,
    openid VARCHAR(128) NOT NULL,
    patient_id BIGINT UNSIGNED NULL,
    visit_ref VARCHAR(128) NOT NULL,     -- the clinic system's visit id: one invitation per visit
    attributes TEXT NOT NULL,            -- the attributes asked, one per line, as at invitation
    state ENUM('awaiting', 'submitted', 'replied') NOT NULL DEFAULT 'awaiting',
    overall ENUM('good', 'average', 'poor') NULL,  -- the worst rating given (list filter)
    comment TEXT NULL,
    reply TEXT NULL,
    reply_delivery VARCHAR(32) NULL,     -- 'sent' (customer-service text), 'notice_needed'
    reply_outbox_id BIGINT UNSIGNED NULL,
    replied_by BIGINT UNSIGNED NULL,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    expires_at TIMESTAMP(3) NOT NULL,
    submitted_at TIMESTAMP(3) NULL,
    replied_at TIMESTAMP(3) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_evaluations_visit (clinic_id, visit_ref),
    KEY ix_evaluations_state (clinic_id, state, id),
    KEY ix_evaluations_overall (clinic_id, overall, id),
    CONSTRAINT fk_evaluations_clinic FOREIGN KEY (clinic_id) REFERENCES clinics (id),
    CONSTRAINT fk_evaluations_account FOREIGN KEY (account_id) REFERENCES official_accounts (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS evaluation_ratings (
    evaluation_id BIGINT UNSIGNED NOT NULL,
    position TINYINT UNSIGNED NOT NULL,  -- the attribute's line in evaluations.attributes
    attribute VARCHAR(64) NOT NULL,
    rating ENUM('good', 'average', 'poor') NOT NULL,
    PRIMARY KEY (evaluation_id, position),
    KEY ix_evaluation_ratings_attribute (attribute),
    CONSTRAINT fk_evaluation_ratings_evaluation FOREIGN KEY (evaluation_id)
        REFERENCES evaluations (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
