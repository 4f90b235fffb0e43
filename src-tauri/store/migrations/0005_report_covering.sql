-- Reports over a million invoices read only what they need.
-- When an invoice was cleared (its balance reached zero): days-to-pay without scanning the ledger.
ALTER TABLE invoices ADD COLUMN cleared_at TEXT;
UPDATE invoices SET cleared_at = (SELECT MAX(paid_at) FROM ledger_payments WHERE invoice_id = invoices.id) WHERE status = 'paid';
CREATE INDEX invoices_cleared ON invoices(cleared_at, issue_date) WHERE cleared_at IS NOT NULL;
-- What is still owed, and each month's sales, from covering indexes.
CREATE INDEX invoices_owed ON invoices(issue_date, due_date, balance, status) WHERE balance > 0 AND status != 'cancelled';
CREATE INDEX invoices_issue_amount ON invoices(issue_date, amount, status);
DROP INDEX invoices_issue;
CREATE INDEX invoices_due_cover ON invoices(due_date, status, amount, balance);
DROP INDEX invoices_due;
-- Money received in a period, by source, without touching the table.
CREATE INDEX ledger_paid_cover ON ledger_payments(paid_at, amount, applied, source, invoice_id);
DROP INDEX ledger_paid_at;
