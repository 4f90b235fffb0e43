import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { Reminders, parseSteps, stepWords } from "./reminders";
import type { PlannedReminder, ReminderPolicy, TemplateDef } from "../api";

const policy: ReminderPolicy = {
  enabled: true,
  steps: [-3, 0, 3, 7],
  repeat_every_days: 7,
  max_repeats: 4,
  send_at: "09:00:00",
  quiet_from: "20:00:00",
  quiet_until: "08:00:00",
  skip_sundays: true,
};

const planned: PlannedReminder = {
  day: "2026-12-07",
  at: "2026-12-07T06:00:00Z",
  customer_name: "Wanjiku Kamau",
  invoices: [{ number: "INV-1042", balance: 12500, step: 1, days_from_due: -3 }],
};

const templates: TemplateDef[] = [
  {
    name: "malipo_payment_reminder",
    language: "en",
    category: "UTILITY",
    body: "Hello {{1}}, invoice {{3}} for {{2}} is due on {{4}}.",
    params: ["customer name", "amount", "invoice", "due date"],
    quick_replies: [{ text: "Pay now", payload_prefix: "PAY:" }],
  },
  {
    name: "malipo_payment_reminder",
    language: "sw",
    category: "UTILITY",
    body: "Habari {{1}}, ankara {{3}} ya {{2}} inadaiwa tarehe {{4}}.",
    params: ["customer name", "amount", "invoice", "due date"],
    quick_replies: [{ text: "Lipa sasa", payload_prefix: "PAY:" }],
  },
];

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("Reminders screen", () => {
  it("saves the schedule and shows the new preview", async () => {
    let saved: ReminderPolicy | undefined;
    mockIPC((cmd, args) => {
      if (cmd === "reminder_policy") return saved ?? policy;
      if (cmd === "reminder_preview") return saved ? [planned] : [];
      if (cmd === "reminder_templates") return templates;
      if (cmd === "save_reminder_policy") {
        saved = (args as { policy: ReminderPolicy }).policy;
        return null;
      }
    });
    render(<Reminders timezone="Africa/Nairobi" />);
    await waitFor(() => expect(screen.getByText("No reminders in the next 7 days")).toBeTruthy());
    const steps = screen.getByLabelText("Remind on these days, counted from the due date") as HTMLInputElement;
    expect(steps.value).toBe("-3, 0, 3, 7");
    fireEvent.input(steps, { target: { value: "-3, 0, 5" } });
    expect(screen.getByText("3 days before the due date · on the due date · 5 days late")).toBeTruthy();
    fireEvent.click(screen.getByText("Save schedule"));
    await waitFor(() => expect(screen.getByText("Wanjiku Kamau")).toBeTruthy());
    expect(saved?.steps).toEqual([-3, 0, 5]);
    expect(saved?.send_at).toBe("09:00:00");
    expect(screen.getByRole("status").textContent).toContain("Saved");
    // 06:00 UTC is 09:00 in Nairobi.
    expect(screen.getByText("7 Dec 2026, 09:00")).toBeTruthy();
    expect(screen.getByText("KES 12,500")).toBeTruthy();
    expect(screen.getByText("INV-1042")).toBeTruthy();
  });

  it("shows the core's validation error next to its field", async () => {
    mockIPC((cmd) => {
      if (cmd === "reminder_policy") return policy;
      if (cmd === "reminder_preview") return [];
      if (cmd === "reminder_templates") return templates;
      if (cmd === "save_reminder_policy") throw { code: "invalid", message: "the send time 21:00:00 falls in the quiet hours", field: "send_at" };
    });
    render(<Reminders />);
    const sendAt = (await screen.findByLabelText("Send at")) as HTMLInputElement;
    fireEvent.input(sendAt, { target: { value: "21:00" } });
    fireEvent.click(screen.getByText("Save schedule"));
    await waitFor(() => expect(document.getElementById("rem-send_at-error")?.textContent).toContain("falls in the quiet hours"));
    expect(sendAt.getAttribute("aria-invalid")).toBe("true");
    expect(sendAt.getAttribute("aria-describedby")).toBe("rem-send_at-error");
  });

  it("refuses steps that are not numbers before asking the core", async () => {
    let calls = 0;
    mockIPC((cmd) => {
      if (cmd === "reminder_policy") return policy;
      if (cmd === "reminder_preview") return [];
      if (cmd === "reminder_templates") return [];
      if (cmd === "save_reminder_policy") calls++;
    });
    render(<Reminders />);
    const steps = await screen.findByLabelText("Remind on these days, counted from the due date");
    fireEvent.input(steps, { target: { value: "-3, soon" } });
    fireEvent.click(screen.getByText("Save schedule"));
    await waitFor(() => expect(document.getElementById("rem-steps-error")?.textContent).toContain("whole numbers"));
    expect(calls).toBe(0);
  });

  it("shows the English and Swahili templates as the customer reads them, with the Meta note", async () => {
    mockIPC((cmd) => (cmd === "reminder_policy" ? policy : cmd === "reminder_templates" ? templates : []));
    render(<Reminders />);
    await waitFor(() => expect(screen.getByText("Payment reminder")).toBeTruthy());
    expect(screen.getByText("Hello [customer name], invoice [invoice] for [amount] is due on [due date].")).toBeTruthy();
    expect(screen.getByText("Habari [customer name], ankara [invoice] ya [amount] inadaiwa tarehe [due date].")).toBeTruthy();
    expect(screen.getByText(/Meta must approve/)).toBeTruthy();
  });

  it("shows the error when the engine is not running", async () => {
    mockIPC(() => {
      throw { code: "engine_unavailable", message: "M-Pesa credentials are missing" };
    });
    render(<Reminders />);
    await waitFor(() => expect(screen.getAllByRole("alert")[0].textContent).toContain("M-Pesa credentials are missing"));
  });
});

describe("step helpers", () => {
  it("reads steps and says them in words", () => {
    expect(parseSteps("-3, 0 3,7")).toEqual([-3, 0, 3, 7]);
    expect(parseSteps("1, x")).toBeUndefined();
    expect(stepWords(-1)).toBe("1 day before the due date");
    expect(stepWords(14)).toBe("14 days late");
  });
});
