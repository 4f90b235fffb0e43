import { afterEach, describe, expect, it } from "vitest";
import { cleanup, render, screen, waitFor } from "@testing-library/preact";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { Invoices } from "./invoices";
import type { Invoice } from "../api";

const invoice = (over: Partial<Invoice>): Invoice => ({
  id: 1,
  number: "INV-1042",
  customer_id: 1,
  customer_name: "Wanjiku Kamau",
  customer_phone: "2547•••••678",
  currency: "KES",
  amount: 2500,
  balance: 2500,
  issue_date: "2026-11-01",
  due_date: "2026-12-01",
  status: "open",
  description: "",
  ...over,
});

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("Invoices screen", () => {
  it("lists invoices from the core with Kenyan amounts and masked phones", async () => {
    mockIPC((cmd) => (cmd === "list_invoices" ? [invoice({}), invoice({ id: 2, number: "INV-1043", balance: 0, status: "paid" })] : null));
    render(<Invoices />);
    await waitFor(() => expect(screen.getByText("INV-1043")).toBeTruthy());
    expect(screen.getAllByText("KES 2,500").length).toBeGreaterThan(0);
    expect(screen.getAllByText("2547•••••678").length).toBe(2);
    expect(screen.getByText("Paid", { selector: ".status" })).toBeTruthy();
  });

  it("shows an empty state when there are no invoices", async () => {
    mockIPC(() => []);
    render(<Invoices />);
    await waitFor(() => expect(screen.getByText("No invoices yet")).toBeTruthy());
  });

  it("shows the core's error message with a retry", async () => {
    mockIPC(() => {
      throw { code: "store", message: "database is locked" };
    });
    render(<Invoices />);
    await waitFor(() => expect(screen.getByRole("alert").textContent).toContain("database is locked"));
    expect(screen.getByText("Try again")).toBeTruthy();
  });
});
