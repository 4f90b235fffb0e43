-- WhatsApp channel, schema version 2: what the durable inbox and outbox need beyond version 1.

-- Outbox: who initiated the message (opt-outs cancel business-initiated ones), the message it answers,
-- the "attempt outcome unknown" marker used for crash safety, and a forced template fallback.
ALTER TABLE outbox ADD COLUMN business_initiated INTEGER NOT NULL DEFAULT 1 CHECK (business_initiated IN (0, 1));
ALTER TABLE outbox ADD COLUMN reply_to TEXT;
-- Set when an attempt's outcome is unknown (the worker died or the request timed out after it was sent).
-- Such a row is not resent until a grace period passed without a status webhook naming it.
ALTER TABLE outbox ADD COLUMN in_doubt_since TEXT;
-- What was actually sent: 'message' or 'template' (the fallback, outside the 24-hour window or on 131047).
ALTER TABLE outbox ADD COLUMN sent_as TEXT;
ALTER TABLE outbox ADD COLUMN error_code INTEGER;
CREATE INDEX outbox_wamid ON outbox(wamid) WHERE wamid IS NOT NULL;

-- The pair rate (1 message per 6 s to one user) as a theoretical arrival time per recipient (GCRA),
-- kept in the store so a restart does not forget it.
CREATE TABLE whatsapp_pair_rate (
    recipient TEXT PRIMARY KEY,
    tat       TEXT NOT NULL
);

-- The best delivery status known for each wamid. Statuses may arrive before the outbox has recorded
-- the wamid, so they live here and are copied onto messages when both exist.
CREATE TABLE whatsapp_statuses (
    wamid        TEXT PRIMARY KEY,
    recipient    TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('sent', 'delivered', 'read', 'failed')),
    status_at    TEXT NOT NULL,
    error_code   INTEGER,
    error_detail TEXT,
    updated_at   TEXT NOT NULL
);

ALTER TABLE messages ADD COLUMN error_code INTEGER;
ALTER TABLE messages ADD COLUMN error_detail TEXT;

-- Inbound processing: retry with backoff; an event that keeps failing is parked for the merchant
-- (kept, visible, and no longer blocking that customer's later events).
ALTER TABLE inbound_events ADD COLUMN next_attempt_at TEXT;
ALTER TABLE inbound_events ADD COLUMN parked_at TEXT;
CREATE INDEX inbound_pending_by_key ON inbound_events(ordering_key, id) WHERE processed_at IS NULL AND parked_at IS NULL;

-- Customers: how they opted out, and whether WhatsApp said the number cannot receive messages (131026).
ALTER TABLE customers ADD COLUMN opt_out_source TEXT;
ALTER TABLE customers ADD COLUMN wa_undeliverable_at TEXT;
