import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { Simulator } from "./simulator";
import type { SimCustomer, SimMessage, SimPrompt, SimState } from "../api";

const wanjiku: SimCustomer = { customer_id: 1, name: "Wanjiku Kamau", phone: "2547•••••678", open_invoices: 1, balance: 2500 };
const otieno: SimCustomer = { customer_id: 2, name: "Otieno Ouma", phone: "2547•••••123", open_invoices: 2, balance: 7400 };

const prompt: SimPrompt = {
  checkout_request_id: "ws_CO_041220261405001",
  customer_id: 1,
  phone: "2547•••••678",
  amount: 2500,
  account_reference: "INV-1042",
  business_name: "Mama Mboga Supplies",
};

const conversation: SimMessage[] = [
  { from_customer: true, text: "Nataka kulipa", buttons: [], list: null, at: "2026-12-04T11:05:00Z" },
  {
    from_customer: false,
    text: "Pay KES 2,500 for INV-1042 from 2547•••••678?",
    buttons: [
      { id: "confirm:yes", title: "Yes, pay" },
      { id: "confirm:no", title: "No" },
    ],
    list: null,
    at: "2026-12-04T11:05:02Z",
  },
];

interface Call {
  cmd: string;
  args: Record<string, unknown>;
}

function fakeCore(state: SimState, msgs: SimMessage[] = conversation, fail?: (cmd: string) => unknown) {
  const calls: Call[] = [];
  mockIPC((cmd, payload) => {
    const args = (payload ?? {}) as Record<string, unknown>;
    calls.push({ cmd, args });
    const failure = fail?.(cmd);
    if (failure) throw failure;
    switch (cmd) {
      case "sim_state":
        return state;
      case "sim_messages":
        return args.customerId === 1 ? msgs : [];
      default:
        return null;
    }
  });
  return calls;
}

const enabled = (over: Partial<SimState> = {}): SimState => ({ enabled: true, customers: [wanjiku, otieno], prompts: [], ...over });

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("Simulator screen", () => {
  it("shows the customer's chat on a phone: customer on the right, business with reply buttons", async () => {
    fakeCore(enabled());
    render(<Simulator merchantName="Mama Mboga Supplies" />);
    const phone = await screen.findByTestId("sim-phone");
    await waitFor(() => expect(phone.querySelectorAll(".bubble").length).toBe(2));
    expect(phone.querySelector(".bubble.from-customer")!.textContent).toContain("Nataka kulipa");
    expect(phone.querySelector(".bubble.from-business")!.textContent).toContain("INV-1042");
    const buttons = Array.from(phone.querySelectorAll("button.reply-button")).map((b) => b.textContent);
    expect(buttons).toEqual(["Yes, pay", "No"]);
    // The picker shows who, their masked number and what they owe.
    const picker = screen.getByRole("combobox", { name: "Customer" }) as HTMLSelectElement;
    expect(picker.options[0]!.textContent).toContain("2547•••••678");
    expect(picker.options[0]!.textContent).toContain("KES 2,500");
    expect(screen.getByText("Chat as your customer: try 'Nataka kulipa'. You'll see the M-Pesa prompt on this phone.")).toBeTruthy();
  });

  it("tapping a reply button sends sim_tap with the button's id and title", async () => {
    const calls = fakeCore(enabled());
    render(<Simulator />);
    fireEvent.click(await screen.findByRole("button", { name: "Yes, pay" }));
    await waitFor(() => expect(calls.find((c) => c.cmd === "sim_tap")).toBeTruthy());
    expect(calls.find((c) => c.cmd === "sim_tap")!.args).toEqual({ customerId: 1, id: "confirm:yes", title: "Yes, pay" });
  });

  it("a list message opens its rows, and picking one taps it", async () => {
    const calls = fakeCore(enabled(), [
      {
        from_customer: false,
        text: "Which invoice?",
        buttons: [],
        list: { button: "Choose invoice", rows: [{ id: "inv:1043", title: "INV-1043", description: "KES 4,900 due 5 Dec" }] },
        at: "2026-12-04T11:05:02Z",
      },
    ]);
    render(<Simulator />);
    fireEvent.click(await screen.findByRole("button", { name: /Choose invoice/ }));
    fireEvent.click(await screen.findByRole("button", { name: /INV-1043/ }));
    await waitFor(() => expect(calls.find((c) => c.cmd === "sim_tap")).toBeTruthy());
    expect(calls.find((c) => c.cmd === "sim_tap")!.args).toEqual({ customerId: 1, id: "inv:1043", title: "INV-1043" });
  });

  it("typing and pressing Send calls sim_send_text as the picked customer; chips send too", async () => {
    const calls = fakeCore(enabled());
    const { container } = render(<Simulator />);
    await screen.findByTestId("sim-phone");
    const picker = container.querySelector("select[aria-label='Customer']") as HTMLSelectElement;
    fireEvent.change(picker, { target: { value: "2" } });
    await waitFor(() => expect(screen.getByTestId("sim-phone").getAttribute("aria-label")).toContain("Otieno"));
    const input = container.querySelector("input[aria-label='Message']") as HTMLInputElement;
    fireEvent.input(input, { target: { value: "How much do I owe?" } });
    fireEvent.click(container.querySelector("button[aria-label='Send']")!);
    await waitFor(() => expect(calls.find((c) => c.cmd === "sim_send_text")).toBeTruthy());
    expect(calls.find((c) => c.cmd === "sim_send_text")!.args).toEqual({ customerId: 2, body: "How much do I owe?" });
    await waitFor(() => expect(input.value).toBe(""));

    fireEvent.click(screen.getByRole("button", { name: "Nimeshalipa" }));
    await waitFor(() => expect(calls.filter((c) => c.cmd === "sim_send_text").length).toBe(2));
    expect(calls.filter((c) => c.cmd === "sim_send_text")[1]!.args).toEqual({ customerId: 2, body: "Nimeshalipa" });
  });

  it("shows the M-Pesa prompt for the picked customer; Enter PIN answers 'pin'", async () => {
    const calls = fakeCore(enabled({ prompts: [prompt] }));
    render(<Simulator />);
    const stk = await screen.findByTestId("stk-prompt");
    expect(stk.textContent).toContain("Do you want to pay KES 2,500 to Mama Mboga Supplies? Account no. INV-1042. Enter M-PESA PIN");
    expect(screen.getByTestId("sim-phone").contains(stk)).toBe(true);
    const answers = Array.from(stk.querySelectorAll("button[data-answer]")).map((b) => [b.getAttribute("data-answer"), b.textContent]);
    expect(answers).toEqual([
      ["pin", "Enter PIN"],
      ["wrong_pin", "Wrong PIN"],
      ["insufficient", "Insufficient balance"],
      ["cancel", "Cancel"],
      ["no_answer", "Ignore (no answer)"],
    ]);
    fireEvent.click(stk.querySelector("button[data-answer='pin']")!);
    await waitFor(() => expect(calls.find((c) => c.cmd === "sim_answer")).toBeTruthy());
    expect(calls.find((c) => c.cmd === "sim_answer")!.args).toEqual({ checkoutRequestId: "ws_CO_041220261405001", answer: "pin" });
    await waitFor(() => expect(screen.queryByTestId("stk-prompt")).toBeNull());
  });

  it("does not show another customer's prompt on this phone, but says where it is", async () => {
    fakeCore(enabled({ prompts: [{ ...prompt, customer_id: 2, phone: otieno.phone }] }));
    render(<Simulator />);
    await screen.findByTestId("sim-phone");
    await waitFor(() => expect(screen.getByText(/M-Pesa prompt is waiting on another phone/)).toBeTruthy());
    expect(screen.queryByTestId("stk-prompt")).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "Otieno Ouma" }));
    await waitFor(() => expect(screen.getByTestId("stk-prompt")).toBeTruthy());
  });

  it("explains that the simulator is off when real credentials are in use", async () => {
    fakeCore({ enabled: false, customers: [wanjiku], prompts: [] });
    render(<Simulator />);
    await waitFor(() => expect(screen.getByText("The simulator is off")).toBeTruthy());
    expect(screen.getByRole("status").textContent).toContain("real M-Pesa");
    expect(screen.queryByTestId("sim-phone")).toBeNull();
  });

  it("asks to import invoices first when there are no customers", async () => {
    fakeCore(enabled({ customers: [] }));
    const went: string[] = [];
    render(<Simulator onNavigate={(id) => went.push(id)} />);
    await waitFor(() => expect(screen.getByText("No customers to chat as yet")).toBeTruthy());
    expect(screen.getByRole("status").textContent).toContain("Import your invoices first (Invoices screen)");
    fireEvent.click(screen.getByRole("button", { name: "Go to Invoices" }));
    expect(went).toEqual(["invoices"]);
  });

  it("shows the core's error with a retry", async () => {
    fakeCore(enabled(), conversation, (cmd) => (cmd === "sim_state" ? { code: "store", message: "database is locked" } : undefined));
    render(<Simulator />);
    await waitFor(() => expect(screen.getByRole("alert").textContent).toContain("database is locked"));
    expect(screen.getByText("Try again")).toBeTruthy();
  });
});
