-- The staff console (issue 5, docs/api.md "Conversations"): the fan panel's remark and tags, the
-- "ignore unread" mark, and an index for the conversation list (newest activity first per
-- account). Unread = the fan's inbound messages after the last agent reply and after
-- read_upto_message_id, which "ignore unread" moves to the fan's latest inbound message.
ALTER TABLE fans
    ADD COLUMN IF NOT EXISTS remark VARCHAR(64) NULL,
    ADD COLUMN IF NOT EXISTS tags VARCHAR(1024) NOT NULL DEFAULT '[]',  -- JSON array of strings
    ADD COLUMN IF NOT EXISTS read_upto_message_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
    ADD KEY IF NOT EXISTS ix_fans_activity (account_id, last_message_at, id);
