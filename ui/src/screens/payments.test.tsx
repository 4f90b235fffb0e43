import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { Payments } from "./payments";

afterEach(() => {
  cleanup();
  clearMocks();
});

const unmatched = {
  kind: "unmatched_payment",
  id: 3,
  title: "Payment to match",
  detail: 'KES 1,200 from 2547•••••009, account "INV-99" (M-Pesa QAA0000009)',
  customer_id: null,
  customer_name: null,
  invoice_number: null,
  at: "2026-12-04T07:00:00.000Z",
};

const invoice = { id: 5, number: "INV-1042", customer_id: 1, customer_name: "Wanjiku Kamau", customer_phone: null, currency: "KES", amount: 2500, balance: 2500, issue_date: "2026-11-01", due_date: "2026-12-01", status: "open", description: "" };

describe("Payments to match", () => {
  it("matches a paybill payment to the invoice the merchant picks", async () => {
    let matched: unknown;
    mockIPC((cmd, args) => {
      if (cmd === "list_payments") return { attempts: [], ledger: [] };
      if (cmd === "attention") return matched ? [] : [unmatched];
      if (cmd === "list_invoices") return [invoice, { ...invoice, id: 6, number: "INV-1", status: "paid", balance: 0 }];
      if (cmd === "match_payment") matched = args;
      return null;
    });
    render(<Payments />);
    const picker = (await screen.findByLabelText("Invoice this payment is for")) as HTMLSelectElement;
    expect(screen.getByText(/QAA0000009/)).toBeTruthy();
    expect(picker.options.length).toBe(2); // "Choose…" and the one open invoice; paid ones are not offered
    fireEvent.change(picker, { target: { value: "5" } });
    fireEvent.click(screen.getByText("Match"));
    await waitFor(() => expect(screen.queryByText("Payments to match")).toBeNull());
    expect(matched).toEqual({ unmatchedId: 3, invoiceId: 5 });
  });
});
