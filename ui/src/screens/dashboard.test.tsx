import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { Dashboard, monthLabel } from "./dashboard";
import type { AppInfo, AttentionItem, DashboardView } from "../api";

afterEach(() => {
  cleanup();
  clearMocks();
});

const item = (over: Partial<AttentionItem>): AttentionItem => ({
  kind: "dispute",
  id: 7,
  title: "Invoice disputed",
  detail: "the customer says the amount is wrong",
  customer_id: 1,
  customer_name: "Wanjiku Kamau",
  invoice_number: "INV-1042",
  at: "2026-12-04T07:00:00.000Z",
  ...over,
});

const view = (over: Partial<DashboardView>): DashboardView => ({
  collected_today: 2500,
  payments_today: 1,
  collected_this_month: 15000,
  owed: 12500,
  open_invoices: 1,
  overdue: 0,
  months: [
    { month: "2026-11", collection_rate: null, collected: 0 },
    { month: "2026-12", collection_rate: 16.7, collected: 15000 },
  ],
  funnel: { reminded: 4, replied: 3, confirmed: 2, pushed: 2, paid: 1 },
  attention: [],
  ...over,
});

describe("Dashboard", () => {
  it("shows today's and this month's money, what is owed, and the charts' figures", async () => {
    mockIPC((cmd) => (cmd === "dashboard" ? view({}) : null));
    render(<Dashboard info={undefined} go={() => undefined} />);
    await waitFor(() => expect(screen.getByTestId("collected-today").textContent).toBe("KES 2,500"));
    expect(screen.getByText("1 payment")).toBeTruthy();
    expect(screen.getByTestId("collected").textContent).toBe("KES 15,000");
    expect(screen.getByTestId("owed").textContent).toBe("KES 12,500");
    expect(screen.getByRole("img", { name: /Collection rate by month/ }).getAttribute("aria-label")).toContain("Dec 2026: 16.7% collected");
    expect(screen.getByRole("img", { name: /Customers this month/ }).getAttribute("aria-label")).toContain("Paid 1");
    expect(screen.getByText(/Nothing waiting on you/)).toBeTruthy();
  });

  it("lists what needs the merchant and clears an item marked done", async () => {
    let resolved: unknown;
    mockIPC((cmd, args) => {
      if (cmd === "dashboard") return resolved ? view({}) : view({ attention: [item({}), item({ kind: "whatsapp_paused", id: 0, title: "WhatsApp sending is paused", detail: "token expired" })] });
      if (cmd === "resolve_attention") resolved = args;
      return null;
    });
    const went: string[] = [];
    render(<Dashboard info={undefined} go={(id) => went.push(id)} />);
    const list = await screen.findByRole("list", { name: "Needs your attention" });
    expect(list.textContent).toContain("Invoice disputed");
    expect(list.textContent).toContain("Wanjiku Kamau · INV-1042");
    expect(list.textContent).toContain("token expired");
    fireEvent.click(screen.getByText("Open chat"));
    expect(went).toEqual(["conversations"]);
    fireEvent.click(screen.getByText("Mark done"));
    await waitFor(() => expect(screen.queryByText("Invoice disputed")).toBeNull());
    expect(resolved).toEqual({ id: 7 });
  });

  it("shows the core's error with a retry", async () => {
    mockIPC(() => {
      throw { code: "engine_unavailable", message: "the database is newer than this Malipo" };
    });
    render(<Dashboard info={undefined} go={() => undefined} />);
    await waitFor(() => expect(screen.getByRole("alert").textContent).toContain("newer than this Malipo"));
  });

  it("names months the merchant's way", () => {
    expect(monthLabel("2026-12")).toBe("Dec 2026");
  });
});

describe("First launch", () => {
  it("offers sample invoices in simulator mode and opens the Simulator once they are added", async () => {
    let loaded = false;
    mockIPC((cmd) => {
      if (cmd === "dashboard") return view({ collected_today: 0, payments_today: 0, collected_this_month: 0, owed: 0, open_invoices: 0 });
      if (cmd === "load_sample_invoices") {
        loaded = true;
        return { created: 3, updated: 0, unchanged: 0, skipped: 0, warnings: [], saved: true };
      }
      return null;
    });
    const went: string[] = [];
    const info = { daraja_environment: "simulator" } as AppInfo;
    render(<Dashboard info={info} go={(id) => went.push(id)} />);
    fireEvent.click(await screen.findByText("Try it with 3 sample invoices"));
    await waitFor(() => expect(went).toEqual(["simulator"]));
    expect(loaded).toBe(true);
  });

  it("does not offer made-up invoices with real M-Pesa details", async () => {
    mockIPC((cmd) => (cmd === "dashboard" ? view({ collected_this_month: 0, owed: 0, open_invoices: 0 }) : null));
    render(<Dashboard info={{ daraja_environment: "production" } as AppInfo} go={() => undefined} />);
    await screen.findByText("No invoices yet");
    expect(screen.queryByText("Try it with 3 sample invoices")).toBeNull();
  });
});
