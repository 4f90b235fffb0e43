-- Indexes for the collection reports (period filters on payment, issue and send times).
CREATE INDEX ledger_paid_at ON ledger_payments(paid_at);
CREATE INDEX invoices_issue ON invoices(issue_date);
CREATE INDEX reminder_sends_at ON reminder_sends(at);
CREATE INDEX attempts_created ON payment_attempts(created_at);
