import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { Invoices, sortInvoices } from "./invoices";
import type { ImportPreview, Invoice } from "../api";

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

describe("Sorting", () => {
  it("orders by due date, balance, customer or number", () => {
    const rows = [
      invoice({ id: 1, number: "INV-10", customer_name: "Otieno", balance: 100, due_date: "2026-12-05" }),
      invoice({ id: 2, number: "INV-9", customer_name: "Akinyi", balance: 900, due_date: "2026-12-01" }),
    ];
    expect(sortInvoices(rows, "due").map((i) => i.id)).toEqual([2, 1]);
    expect(sortInvoices(rows, "balance").map((i) => i.id)).toEqual([2, 1]);
    expect(sortInvoices(rows, "customer").map((i) => i.id)).toEqual([2, 1]);
    expect(sortInvoices(rows, "number").map((i) => i.number)).toEqual(["INV-9", "INV-10"]);
  });
});

const preview: ImportPreview = {
  source: "invoices.csv",
  headers: ["Inv No", "Client", "Mobile", "Total", "Due"],
  mapping: { number: "Inv No", customer: "Client", phone: "Mobile", amount: "Total", due_date: "Due", balance: null, issue_date: null, description: null },
  columns_ok: true,
  data_rows: 3,
  good_rows: 2,
  bad_rows: 1,
  errors: [{ line: 4, column: "Total", reason: "\"abc\" is not an amount" }],
  errors_total: 1,
  sample: [
    { line: 2, number: "INV-1", customer_name: "Wanjiku", phone: "2547•••••678", amount: 2500, balance: null, issue_date: "2026-12-04", due_date: "2026-12-20", description: null },
  ],
  plan: { created: 2, updated: 0, unchanged: 0, skipped: 1, warnings: [], saved: false },
};

describe("Import wizard", () => {
  it("checks the file, lists bad rows by line, then imports the good rows", async () => {
    const calls: [string, unknown][] = [];
    let listed = 0;
    mockIPC((cmd, args) => {
      calls.push([cmd, args]);
      if (cmd === "list_invoices") return listed++ === 0 ? [] : [invoice({})];
      if (cmd === "import_preview") return preview;
      if (cmd === "import_commit") return { created: 2, updated: 0, unchanged: 0, skipped: 1, warnings: [], saved: true };
      return null;
    });
    render(<Invoices />);
    fireEvent.click(await screen.findByText("Import invoices"));
    const input = screen.getByLabelText("Invoice file") as HTMLInputElement;
    const file = new File(["Inv No,Client\n"], "invoices.csv", { type: "text/csv" });
    Object.defineProperty(input, "files", { value: [file] });
    fireEvent.change(input);

    await waitFor(() => expect(screen.getByTestId("import-summary").textContent).toContain("2 ready"));
    expect(screen.getByTestId("import-summary").textContent).toContain("1 with problems");
    expect(screen.getByText("\"abc\" is not an amount")).toBeTruthy();
    expect((screen.getByLabelText("Column for Amount") as HTMLSelectElement).value).toBe("Total");
    const [, previewArgs] = calls.find(([c]) => c === "import_preview")!;
    expect(previewArgs).toMatchObject({ name: "invoices.csv", mapping: {} });

    fireEvent.click(screen.getByText("Import 2 good rows, skip 1"));
    await waitFor(() => expect(screen.getByTestId("import-done").textContent).toContain("2 new"));
    expect(calls.find(([c]) => c === "import_commit")![1]).toMatchObject({ mode: "valid_rows_only" });
    fireEvent.click(screen.getByText("Close"));
    await waitFor(() => expect(screen.getByText("INV-1042")).toBeTruthy());
  });

  it("sends the merchant's column choice when checking again", async () => {
    const mappings: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "list_invoices") return [];
      if (cmd === "import_preview") {
        mappings.push((args as { mapping: unknown }).mapping);
        return preview;
      }
      return null;
    });
    render(<Invoices />);
    fireEvent.click(await screen.findByText("Import invoices"));
    const input = screen.getByLabelText("Invoice file") as HTMLInputElement;
    Object.defineProperty(input, "files", { value: [new File(["x"], "invoices.csv")] });
    fireEvent.change(input);
    const phone = (await screen.findByLabelText("Column for Phone (M-Pesa / WhatsApp)")) as HTMLSelectElement;
    fireEvent.change(phone, { target: { value: "" } });
    fireEvent.click(screen.getByText("Check again with these columns"));
    await waitFor(() => expect(mappings.length).toBe(2));
    expect(mappings[1]).toMatchObject({ phone: "", amount: "Total" });
  });
});

describe("Invoice detail", () => {
  it("shows the invoice's history and records a cash payment", async () => {
    const recorded: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "list_invoices") return [invoice({})];
      if (cmd === "invoice_timeline")
        return [
          { at: "2026-12-01T06:00:00.000Z", kind: "reminder", title: "Reminder 1 sent on WhatsApp", detail: "delivered" },
          { at: "2026-12-01T07:00:00.000Z", kind: "message_in", title: "Customer wrote", detail: "nataka kulipa" },
        ];
      if (cmd === "record_manual_payment") {
        recorded.push(args);
        return null;
      }
      return null;
    });
    render(<Invoices />);
    fireEvent.click(await screen.findByLabelText("Open INV-1042"));
    await waitFor(() => expect(screen.getByText("Reminder 1 sent on WhatsApp")).toBeTruthy());
    expect(screen.getByText("nataka kulipa")).toBeTruthy();

    fireEvent.input(screen.getByLabelText("Amount (KES)"), { target: { value: "1,000" } });
    fireEvent.click(screen.getByText("Record payment"));
    await waitFor(() => expect(screen.getByText("KES 1,000 recorded.")).toBeTruthy());
    expect(recorded[0]).toMatchObject({ invoiceId: 1, amount: 1000, method: "cash" });
  });

  it("refuses an amount that is not whole shillings without calling the core", async () => {
    let calls = 0;
    mockIPC((cmd) => {
      if (cmd === "record_manual_payment") calls++;
      return cmd === "list_invoices" ? [invoice({})] : [];
    });
    render(<Invoices />);
    fireEvent.click(await screen.findByLabelText("Open INV-1042"));
    fireEvent.input(await screen.findByLabelText("Amount (KES)"), { target: { value: "12.50" } });
    fireEvent.click(screen.getByText("Record payment"));
    await waitFor(() => expect(screen.getByRole("alert").textContent).toContain("whole shillings"));
    expect(calls).toBe(0);
  });
});
