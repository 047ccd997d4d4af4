-- Official accounts (公众号) and the clinics they belong to. Token, EncodingAESKey (current and
-- previous, for rotation) and AppSecret are sealed with the master key (gateway/secret_box.hpp):
-- the database never holds them in clear.
ALTER TABLE clinics ADD UNIQUE KEY IF NOT EXISTS uq_clinics_name (name);

CREATE TABLE IF NOT EXISTS official_accounts (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    clinic_id BIGINT UNSIGNED NOT NULL,
    appid VARCHAR(32) CHARACTER SET ascii NOT NULL,
    original_id VARCHAR(64) CHARACTER SET ascii NOT NULL,
    token_sealed VARCHAR(255) CHARACTER SET ascii NOT NULL,
    aes_key_sealed VARCHAR(255) CHARACTER SET ascii NOT NULL,
    aes_key_previous_sealed VARCHAR(255) CHARACTER SET ascii NULL,
    secret_sealed VARCHAR(255) CHARACTER SET ascii NOT NULL,
    safe_mode_only TINYINT(1) NOT NULL DEFAULT 0,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    UNIQUE KEY uq_official_accounts_appid (appid),
    KEY ix_official_accounts_clinic (clinic_id),
    CONSTRAINT fk_official_accounts_clinic FOREIGN KEY (clinic_id) REFERENCES clinics (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
