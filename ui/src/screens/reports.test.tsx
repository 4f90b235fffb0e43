import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { Reports, periodDates, todayIn } from "./reports";
import type { Report } from "../api";

const report = (over: Partial<Report> = {}): Report => ({
  from: "2026-11-01",
  to: "2026-11-30",
  invoices_due: 4,
  invoices_due_paid: 3,
  amount_due: 50000,
  amount_due_collected: 37500,
  collection_rate_by_count: 75,
  collection_rate_by_amount: 75,
  amount_collected: 42500,
  dso_days: 18.5,
  average_days_to_pay: 9.3,
  median_days_to_pay: 8,
  aging: { current: 5000, days_1_30: 7500, days_31_60: 0, days_61_90: 0, days_over_90: 2500 },
  at_risk_share: 16.7,
  cei: 82.4,
  funnel: { reminded: 10, replied: 6, confirmed: 4, pushed: 4, paid: 3 },
  stk_outcomes: [
    { result_code: 0, meaning: "paid", count: 3 },
    { result_code: 1032, meaning: "cancelled by the customer", count: 1 },
  ],
  sources: [
    { source: "stk_chat", count: 3, amount: 30000 },
    { source: "c2b", count: 1, amount: 12500 },
  ],
  reminder_steps: [{ step: 1, sent: 10, paid_within_7_days: 4, conversion: 40 }],
  ...over,
});

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("Reports screen", () => {
  it("shows the period's figures in shillings and percentages", async () => {
    const asked: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "collection_report") {
        asked.push(args);
        return report();
      }
    });
    render(<Reports timezone="Africa/Nairobi" />);
    await waitFor(() => expect(screen.getByTestId("collected").textContent).toBe("KES 42,500"));
    expect(screen.getByTestId("rate-amount").textContent).toBe("75%");
    expect(screen.getByText("KES 37,500 of KES 50,000 due")).toBeTruthy();
    expect(screen.getByText("3 of 4 invoices due")).toBeTruthy();
    expect(screen.getByText("18.5 days")).toBeTruthy();
    expect(screen.getByText("82.4%")).toBeTruthy();
    expect(screen.getByText("cancelled by the customer")).toBeTruthy();
    // The charts carry their figures as text for screen readers (and for this test: no canvas here).
    expect(screen.getByRole("img", { name: /Over 90 days late: KES 2,500/ })).toBeTruthy();
    expect(screen.getByRole("img", { name: /Paybill \/ till: KES 12,500/ })).toBeTruthy();
    expect(screen.getByRole("img", { name: /Paid: 3/ })).toBeTruthy();
    const today = todayIn("Africa/Nairobi");
    expect(asked[0]).toEqual({ from: `${today.slice(0, 8)}01`, to: today });
  });

  it("asks for last month when it is picked", async () => {
    const asked: { from: string; to: string }[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "collection_report") asked.push(args as { from: string; to: string });
      return report();
    });
    render(<Reports />);
    await waitFor(() => expect(asked.length).toBe(1));
    fireEvent.click(screen.getByText("Last month"));
    await waitFor(() => expect(asked.length).toBe(2));
    expect(asked[1]).toEqual(periodDates("last_month", todayIn("Africa/Nairobi")));
  });

  it("exports the CSV and says where it was saved", async () => {
    mockIPC((cmd) => {
      if (cmd === "collection_report") return report();
      if (cmd === "export_report_csv") return "/home/amina/Downloads/malipo-report-2026-11-01-to-2026-11-30.csv";
    });
    render(<Reports />);
    await waitFor(() => expect(screen.getByTestId("collected")).toBeTruthy());
    fireEvent.click(screen.getByText("Export CSV"));
    await waitFor(() =>
      expect(screen.getByRole("status").textContent).toBe("Saved to /home/amina/Downloads/malipo-report-2026-11-01-to-2026-11-30.csv"),
    );
  });

  it("says so when there is nothing to report", async () => {
    mockIPC(() =>
      report({
        invoices_due: 0,
        amount_collected: 0,
        aging: { current: 0, days_1_30: 0, days_31_60: 0, days_61_90: 0, days_over_90: 0 },
      }),
    );
    render(<Reports />);
    await waitFor(() => expect(screen.getByText("Nothing to report for these dates")).toBeTruthy());
  });

  it("shows the core's error with a retry", async () => {
    mockIPC(() => {
      throw { code: "store", message: "database is locked" };
    });
    render(<Reports />);
    await waitFor(() => expect(screen.getByRole("alert").textContent).toContain("database is locked"));
    expect(screen.getByText("Try again")).toBeTruthy();
  });

  it("refuses a start date after the end date", async () => {
    mockIPC(() => report());
    render(<Reports />);
    fireEvent.click(screen.getByText("Choose dates"));
    const [from] = screen.getAllByDisplayValue(/\d{4}-\d\d-\d\d/) as HTMLInputElement[];
    fireEvent.input(from, { target: { value: "2099-01-01" } });
    await waitFor(() => expect(screen.getByRole("alert").textContent).toContain("start date"));
  });
});

describe("periods", () => {
  it("covers whole months up to today", () => {
    expect(periodDates("this_month", "2026-03-15")).toEqual({ from: "2026-03-01", to: "2026-03-15" });
    expect(periodDates("last_month", "2026-03-15")).toEqual({ from: "2026-02-01", to: "2026-02-28" });
    expect(periodDates("last_month", "2026-01-10")).toEqual({ from: "2025-12-01", to: "2025-12-31" });
    expect(periodDates("last_3_months", "2026-02-10")).toEqual({ from: "2025-12-01", to: "2026-02-10" });
  });

  it("reads today in the merchant's timezone", () => {
    // 22:30 UTC on 31 Jan is already 1 Feb in Nairobi (UTC+3).
    expect(todayIn("Africa/Nairobi", new Date("2026-01-31T22:30:00Z"))).toBe("2026-02-01");
  });
});
