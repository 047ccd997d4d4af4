-- The audit log (DESIGN.md §6): who did what, when — ownership changes, configuration changes,
-- and who read which patient's conversation (medical data). Rows are only ever appended
-- (gateway/audit_log.hpp); admins browse them per clinic, newest first.
CREATE TABLE IF NOT EXISTS audit_log (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    clinic_id BIGINT UNSIGNED NOT NULL,
    actor_agent_id BIGINT UNSIGNED NULL,  -- the agent who acted; NULL: an operator or a system
    actor VARCHAR(64) NOT NULL,           -- 'agent', 'scrm-admin', 'integration', 'system'
    action VARCHAR(64) NOT NULL,          -- dotted, e.g. 'conversation.read', 'fan.owner'
    subject VARCHAR(191) NOT NULL DEFAULT '',  -- what it was done to, e.g. '<account>/<openid>'
    detail MEDIUMTEXT NULL,               -- JSON: what changed (before/after); never secrets
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    KEY ix_audit_log_clinic (clinic_id, id),
    KEY ix_audit_log_action (clinic_id, action, id),
    KEY ix_audit_log_subject (clinic_id, subject, id),
    CONSTRAINT fk_audit_log_clinic FOREIGN KEY (clinic_id) REFERENCES clinics (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Patients as the clinic's own systems know them, and which fans are bound to them (a fan may be
-- bound to several patients — a parent and children — and a patient to several fans). Template
-- notifications find a patient by record number, else phone; the console shows the name.
CREATE TABLE IF NOT EXISTS patients (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    clinic_id BIGINT UNSIGNED NOT NULL,
    name VARCHAR(64) NOT NULL,
    phone VARCHAR(32) NULL,
    record_no VARCHAR(64) NULL,  -- the clinic's medical record number
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    UNIQUE KEY uq_patients_record (clinic_id, record_no),
    KEY ix_patients_phone (clinic_id, phone),
    KEY ix_patients_name (clinic_id, name),
    CONSTRAINT fk_patients_clinic FOREIGN KEY (clinic_id) REFERENCES clinics (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS fan_patients (
    account_id BIGINT UNSIGNED NOT NULL,
    openid VARCHAR(128) NOT NULL,
    patient_id BIGINT UNSIGNED NOT NULL,
    bound_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (account_id, openid, patient_id),
    KEY ix_fan_patients_patient (patient_id),
    CONSTRAINT fk_fan_patients_account FOREIGN KEY (account_id) REFERENCES official_accounts (id),
    CONSTRAINT fk_fan_patients_patient FOREIGN KEY (patient_id) REFERENCES patients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
