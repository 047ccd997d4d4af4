-- Owner reassignment (the admin API) finds a clinic's fans by their consultant or exclusive
-- agent: without these indexes each preview and apply would scan every clinic's fans, and its
-- locking read would touch them all.
ALTER TABLE fans
    ADD INDEX IF NOT EXISTS ix_fans_consultant (consultant_agent_id),
    ADD INDEX IF NOT EXISTS ix_fans_exclusive (exclusive_agent_id);
