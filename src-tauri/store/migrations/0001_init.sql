-- Malipo schema, version 1. Money is whole shillings (INTEGER); times are RFC 3339 UTC text;
-- phone numbers are full international digits (never logged: see domain::Msisdn).

CREATE TABLE customers (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    phone           TEXT UNIQUE,
    language        TEXT NOT NULL DEFAULT 'en' CHECK (language IN ('en', 'sw')),
    opted_in_at     TEXT,
    opt_in_source   TEXT,
    opted_out_at    TEXT,
    -- The 24-hour WhatsApp customer-service window runs from this.
    last_inbound_at TEXT,
    created_at      TEXT NOT NULL
);

CREATE TABLE invoices (
    id          INTEGER PRIMARY KEY,
    number      TEXT NOT NULL UNIQUE,
    -- Uppercase, without spaces, dashes or '#': what customers and M-Pesa account references are matched on.
    number_key  TEXT NOT NULL UNIQUE,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    currency    TEXT NOT NULL DEFAULT 'KES',
    amount      INTEGER NOT NULL CHECK (amount > 0),
    balance     INTEGER NOT NULL CHECK (balance >= 0),
    issue_date  TEXT NOT NULL,
    due_date    TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('open', 'partially_paid', 'paid', 'disputed', 'cancelled', 'written_off')),
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX invoices_customer ON invoices(customer_id);
CREATE INDEX invoices_due ON invoices(due_date);

-- Each STK push Malipo makes. One owner state machine (payments::attempt); every change is a payment_event.
CREATE TABLE payment_attempts (
    id                  INTEGER PRIMARY KEY,
    -- One per confirmed intent: a retried request with the same key never pushes twice.
    idempotency_key     TEXT NOT NULL UNIQUE,
    invoice_id          INTEGER NOT NULL REFERENCES invoices(id),
    customer_id         INTEGER NOT NULL REFERENCES customers(id),
    phone               TEXT NOT NULL,
    amount              INTEGER NOT NULL CHECK (amount > 0),
    origin              TEXT NOT NULL CHECK (origin IN ('chat', 'merchant')),
    state               TEXT NOT NULL,
    in_flight           INTEGER NOT NULL DEFAULT 1 CHECK (in_flight IN (0, 1)),
    checkout_request_id TEXT UNIQUE,
    merchant_request_id TEXT,
    result_code         INTEGER,
    result_desc         TEXT,
    receipt             TEXT,
    next_check_at       TEXT,
    checks              INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
-- Never two in-flight pushes for one invoice or one phone, whatever the code above does.
CREATE UNIQUE INDEX attempts_one_in_flight_per_invoice ON payment_attempts(invoice_id) WHERE in_flight = 1;
CREATE UNIQUE INDEX attempts_one_in_flight_per_phone ON payment_attempts(phone) WHERE in_flight = 1;
CREATE INDEX attempts_next_check ON payment_attempts(next_check_at) WHERE in_flight = 1;

CREATE TABLE payment_events (
    id         INTEGER PRIMARY KEY,
    attempt_id INTEGER NOT NULL REFERENCES payment_attempts(id),
    from_state TEXT,
    to_state   TEXT NOT NULL,
    -- callback | query | c2b | merchant | timeout | push | system
    cause      TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '',
    at         TEXT NOT NULL
);
CREATE INDEX payment_events_attempt ON payment_events(attempt_id);

-- Money received. A receipt is applied once.
CREATE TABLE ledger_payments (
    id          INTEGER PRIMARY KEY,
    receipt     TEXT UNIQUE,
    source      TEXT NOT NULL CHECK (source IN ('stk_chat', 'stk_merchant', 'c2b', 'manual')),
    invoice_id  INTEGER REFERENCES invoices(id),
    customer_id INTEGER REFERENCES customers(id),
    attempt_id  INTEGER UNIQUE REFERENCES payment_attempts(id),
    amount      INTEGER NOT NULL CHECK (amount > 0),
    -- What reduced the invoice's balance; the rest is a credit the merchant must see.
    applied     INTEGER NOT NULL CHECK (applied >= 0),
    credit      INTEGER NOT NULL DEFAULT 0 CHECK (credit >= 0),
    reference   TEXT NOT NULL DEFAULT '',
    paid_at     TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    CHECK (applied + credit = amount)
);
CREATE INDEX ledger_invoice ON ledger_payments(invoice_id);

-- C2B payments that matched no invoice: the merchant resolves them by hand.
CREATE TABLE unmatched_payments (
    id          INTEGER PRIMARY KEY,
    trans_id    TEXT NOT NULL UNIQUE,
    amount      INTEGER NOT NULL,
    bill_ref    TEXT NOT NULL DEFAULT '',
    msisdn      TEXT NOT NULL DEFAULT '',
    payer_name  TEXT NOT NULL DEFAULT '',
    received_at TEXT NOT NULL,
    resolved_at TEXT,
    ledger_id   INTEGER REFERENCES ledger_payments(id)
);

CREATE TABLE conversations (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL UNIQUE REFERENCES customers(id),
    -- The dialogue policy's state, serialised by agent::policy.
    state       TEXT NOT NULL DEFAULT '{}',
    handled_by  TEXT NOT NULL DEFAULT 'bot' CHECK (handled_by IN ('bot', 'human')),
    updated_at  TEXT NOT NULL
);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    wamid           TEXT UNIQUE,
    kind            TEXT NOT NULL,
    -- Already redacted: no PIN ever reaches this column.
    body            TEXT NOT NULL,
    status          TEXT,
    status_at       TEXT,
    at              TEXT NOT NULL
);
CREATE INDEX messages_conversation ON messages(conversation_id, id);

-- Every webhook, stored before it is acknowledged; processed afterwards.
CREATE TABLE inbound_events (
    id           INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    -- Events of one customer are processed in order.
    ordering_key TEXT NOT NULL DEFAULT '',
    payload      TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    processed_at TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    UNIQUE (source, external_id)
);
CREATE INDEX inbound_unprocessed ON inbound_events(id) WHERE processed_at IS NULL;

-- Every outbound message, recorded before it is sent.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    recipient       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_until     TEXT,
    wamid           TEXT,
    error           TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX outbox_due ON outbox(recipient, id) WHERE state IN ('pending', 'sending');

CREATE TABLE reminder_schedule (
    invoice_id  INTEGER PRIMARY KEY REFERENCES invoices(id),
    next_step   INTEGER NOT NULL DEFAULT 0,
    next_run_at TEXT,
    paused      INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL
);

CREATE TABLE reminder_sends (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    invoice_id  INTEGER NOT NULL REFERENCES invoices(id),
    step        INTEGER NOT NULL,
    outbox_id   INTEGER REFERENCES outbox(id),
    sent_on     TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX reminder_sends_customer_day ON reminder_sends(customer_id, sent_on);

CREATE TABLE promises (
    id            INTEGER PRIMARY KEY,
    customer_id   INTEGER NOT NULL REFERENCES customers(id),
    invoice_id    INTEGER REFERENCES invoices(id),
    promised_date TEXT NOT NULL,
    amount        INTEGER,
    status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'kept', 'broken', 'cancelled')),
    created_at    TEXT NOT NULL
);

-- Non-secret settings the app changes at run time (templates, reminder policy, tokens for webhook paths).
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    detail  TEXT NOT NULL DEFAULT ''
);
