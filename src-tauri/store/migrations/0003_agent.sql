-- The agent tells customers about payment outcomes durably: what was already told is recorded, so a
-- crash between the outcome and the message never loses (or repeats) a receipt.
ALTER TABLE payment_attempts ADD COLUMN notified_state TEXT;
ALTER TABLE ledger_payments ADD COLUMN customer_notified_at TEXT;

-- Things the merchant must look at: disputes, requests for a person, M-Pesa codes to check,
-- payments needing review, configuration problems.
CREATE TABLE attention (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    customer_id INTEGER REFERENCES customers(id),
    invoice_id  INTEGER REFERENCES invoices(id),
    detail      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    resolved_at TEXT
);
CREATE INDEX attention_open ON attention(created_at) WHERE resolved_at IS NULL;

-- Reminders for a disputed invoice stop until the merchant resolves it.
ALTER TABLE invoices ADD COLUMN reminders_paused INTEGER NOT NULL DEFAULT 0;
