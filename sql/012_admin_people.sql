-- Stores' permanent WeChat QR codes (issue 6): one per store and official account, created once
-- through WeChat's qrcode/create (QR_LIMIT_STR_SCENE, scene "store_<store id>") and kept, since a
-- permanent code never changes and WeChat caps how many an account may create. The ticket opens
-- the printable image at https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=<ticket>.
CREATE TABLE IF NOT EXISTS store_qr_codes (
    store_id BIGINT UNSIGNED NOT NULL,
    account_id BIGINT UNSIGNED NOT NULL,
    scene VARCHAR(64) CHARACTER SET ascii NOT NULL,
    ticket VARCHAR(255) CHARACTER SET ascii NOT NULL,
    url VARCHAR(255) CHARACTER SET ascii NOT NULL,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (store_id, account_id),
    KEY ix_store_qr_codes_account (account_id),
    CONSTRAINT fk_store_qr_codes_store FOREIGN KEY (store_id) REFERENCES stores (id),
    CONSTRAINT fk_store_qr_codes_account FOREIGN KEY (account_id) REFERENCES official_accounts (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Account health (GET /api/admin/health): each account's outbox rows whose last attempt ended
-- with an errcode that needs a person, recent first, without scanning the account's whole outbox.
ALTER TABLE outbox
    ADD INDEX IF NOT EXISTS ix_outbox_account_errcode (account_id, last_errcode, updated_at);

-- Retention: how long a clinic keeps a fan's messages after the fan unfollows (NULL: for ever);
-- the retention worker finds due fans by when they unfollowed.
ALTER TABLE clinics ADD COLUMN IF NOT EXISTS message_retention_days INT UNSIGNED NULL;
ALTER TABLE fans ADD INDEX IF NOT EXISTS ix_fans_unsubscribed (subscribed, unsubscribed_at);
