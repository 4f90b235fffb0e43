import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { Conversations } from "./conversations";
import type { ChatMessage, ConversationSummary } from "../api";

const chat = (over: Partial<ConversationSummary>): ConversationSummary => ({
  customer_id: 1,
  customer_name: "Wanjiku Kamau",
  phone: "2547•••••678",
  handled_by: "bot",
  last_message: "Nataka kulipa",
  last_at: "2026-12-04T11:05:00Z",
  window_open: true,
  opted_out: false,
  ...over,
});

const msg = (over: Partial<ChatMessage>): ChatMessage => ({
  id: 1,
  direction: "in",
  kind: "text",
  body: "Nataka kulipa",
  status: null,
  at: "2026-12-04T11:05:00Z",
  ...over,
});

const messages: ChatMessage[] = [
  msg({}),
  msg({ id: 2, direction: "out", body: "Pay KES 2,500 for INV-1042? Reply YES", status: "read", at: "2026-12-04T11:05:02Z" }),
  msg({ id: 3, direction: "out", body: "Receipt QK12ABC", status: "failed", at: "2026-12-04T11:07:00Z" }),
];

interface Call {
  cmd: string;
  args: Record<string, unknown>;
}

/** A tiny fake core: the inbox plus whatever each test overrides. */
function fakeCore(start: ConversationSummary[], extra: (cmd: string, args: Record<string, unknown>) => unknown = () => undefined, events = false) {
  const calls: Call[] = [];
  let inbox = start;
  mockIPC(
    (cmd, payload) => {
      const args = (payload ?? {}) as Record<string, unknown>;
      calls.push({ cmd, args });
      const custom = extra(cmd, args);
      if (custom !== undefined) return custom;
      switch (cmd) {
        case "list_conversations":
          return inbox;
        case "conversation_messages":
          return messages;
        case "take_over":
          inbox = inbox.map((c) => (c.customer_id === args.customerId ? { ...c, handled_by: "human" } : c));
          return null;
        case "hand_back":
          inbox = inbox.map((c) => (c.customer_id === args.customerId ? { ...c, handled_by: "bot" } : c));
          return null;
        default:
          return null;
      }
    },
    { shouldMockEvents: events },
  );
  return calls;
}

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("Conversations screen", () => {
  it("lists chats with masked phones, Nairobi times and Person / Opted out badges", async () => {
    fakeCore([chat({}), chat({ customer_id: 2, customer_name: "Otieno Ouma", phone: "2547•••••123", handled_by: "human", opted_out: true, last_at: "2026-12-04T10:00:00Z" })]);
    const { container } = render(<Conversations />);
    await waitFor(() => expect(screen.getByText("Otieno Ouma")).toBeTruthy());
    expect(screen.getByText("2547•••••678")).toBeTruthy();
    expect(screen.getByText("2547•••••123")).toBeTruthy();
    // 11:05 UTC is 14:05 in Nairobi.
    expect(screen.getByText("4 Dec 2026, 14:05")).toBeTruthy();
    const otieno = container.querySelector("[data-customer-id='2']")!;
    expect(otieno.textContent).toContain("Person");
    expect(otieno.textContent).toContain("Opted out");
    expect(container.querySelector("[data-customer-id='1']")!.textContent).not.toContain("Person");
  });

  it("shows the selected chat as bubbles with delivery status, failures in red", async () => {
    fakeCore([chat({})]);
    const { container } = render(<Conversations />);
    await waitFor(() => expect(container.querySelector("[data-customer-id='1']")).toBeTruthy());
    fireEvent.click(container.querySelector("[data-customer-id='1']")!);
    await waitFor(() => expect(screen.getByTestId("chat").querySelectorAll(".bubble").length).toBe(3));
    const bubbles = screen.getByTestId("chat").querySelectorAll(".bubble");
    expect(bubbles[0]!.classList.contains("from-customer")).toBe(true);
    expect(bubbles[1]!.classList.contains("from-business")).toBe(true);
    expect(bubbles[1]!.textContent).toContain("Read");
    expect(bubbles[2]!.classList.contains("failed")).toBe(true);
    expect(bubbles[2]!.textContent).toContain("Not delivered");
    // The bot is answering: no reply box until the merchant takes over.
    expect(screen.queryByLabelText("Reply")).toBeNull();
  });

  it("take over calls take_over, then shows the reply box and sends the merchant's reply", async () => {
    const calls = fakeCore([chat({})]);
    const { container } = render(<Conversations />);
    await waitFor(() => expect(container.querySelector("[data-customer-id='1']")).toBeTruthy());
    fireEvent.click(container.querySelector("[data-customer-id='1']")!);
    fireEvent.click(await screen.findByRole("button", { name: "Take over" }));
    await waitFor(() => expect(screen.getByLabelText("Reply")).toBeTruthy());
    expect(calls.find((c) => c.cmd === "take_over")?.args).toEqual({ customerId: 1 });
    expect(screen.getByRole("button", { name: "Hand back to the bot" })).toBeTruthy();
    expect(container.querySelector("[data-customer-id='1']")!.textContent).toContain("Person");

    fireEvent.input(screen.getByLabelText("Reply"), { target: { value: "Karibu, I'll check your invoice" } });
    fireEvent.click(screen.getByRole("button", { name: "Send" }));
    await waitFor(() => expect(calls.find((c) => c.cmd === "send_merchant_reply")).toBeTruthy());
    expect(calls.find((c) => c.cmd === "send_merchant_reply")!.args).toEqual({ customerId: 1, body: "Karibu, I'll check your invoice" });
    await waitFor(() => expect((screen.getByLabelText("Reply") as HTMLTextAreaElement).value).toBe(""));

    fireEvent.click(screen.getByRole("button", { name: "Hand back to the bot" }));
    await waitFor(() => expect(screen.getByRole("button", { name: "Take over" })).toBeTruthy());
    expect(calls.some((c) => c.cmd === "hand_back")).toBe(true);
  });

  it("outside the 24-hour window, free text is disabled and the reason explained", async () => {
    fakeCore([chat({ handled_by: "human", window_open: false })]);
    const { container } = render(<Conversations />);
    await waitFor(() => expect(container.querySelector("[data-customer-id='1']")).toBeTruthy());
    fireEvent.click(container.querySelector("[data-customer-id='1']")!);
    const reply = (await screen.findByLabelText("Reply")) as HTMLTextAreaElement;
    expect(reply.disabled).toBe(true);
    expect((screen.getByRole("button", { name: "Send" }) as HTMLButtonElement).disabled).toBe(true);
    const note = screen.getByRole("note").textContent!;
    expect(note).toContain("24 hours");
    expect(note).toContain("templates");
    expect(note).toContain("not in this version yet");
  });

  it("when the core says the window just closed, the box locks with the explanation", async () => {
    fakeCore([chat({ handled_by: "human" })], (cmd) => {
      if (cmd === "send_merchant_reply") throw { code: "outside_window", message: "outside the 24 hour window" };
      return undefined;
    });
    const { container } = render(<Conversations />);
    await waitFor(() => expect(container.querySelector("[data-customer-id='1']")).toBeTruthy());
    fireEvent.click(container.querySelector("[data-customer-id='1']")!);
    fireEvent.input(await screen.findByLabelText("Reply"), { target: { value: "Hello" } });
    fireEvent.click(screen.getByRole("button", { name: "Send" }));
    await waitFor(() => expect((screen.getByLabelText("Reply") as HTMLTextAreaElement).disabled).toBe(true));
    expect(screen.getByRole("note").textContent).toContain("24 hours");
  });

  it("refreshes the open chat when a conversation-updated event arrives", async () => {
    let inbound: ChatMessage[] = [msg({})];
    fakeCore([chat({})], (cmd) => (cmd === "conversation_messages" ? inbound : undefined), true);
    const { container } = render(<Conversations />);
    await waitFor(() => expect(container.querySelector("[data-customer-id='1']")).toBeTruthy());
    fireEvent.click(container.querySelector("[data-customer-id='1']")!);
    await waitFor(() => expect(screen.getByTestId("chat").querySelectorAll(".bubble").length).toBe(1));
    inbound = [...inbound, msg({ id: 9, body: "Nimeshalipa" })];
    await emit("conversation-updated", { customer_id: 1 });
    await waitFor(() => expect(screen.getByText("Nimeshalipa", { selector: ".body" })).toBeTruthy());
  });

  it("explains where chats come from when there are none, and suggests the Simulator", async () => {
    fakeCore([]);
    const went: string[] = [];
    render(<Conversations onNavigate={(id) => went.push(id)} />);
    await waitFor(() => expect(screen.getByText("No conversations yet")).toBeTruthy());
    expect(screen.getByRole("status").textContent).toContain("Simulator");
    fireEvent.click(screen.getByRole("button", { name: "Open the Simulator" }));
    expect(went).toEqual(["simulator"]);
  });

  it("shows the core's error with a retry that recovers", async () => {
    let fail = true;
    fakeCore([chat({})], (cmd) => {
      if (cmd === "list_conversations" && fail) throw { code: "store", message: "database is locked" };
      return undefined;
    });
    render(<Conversations />);
    await waitFor(() => expect(screen.getByRole("alert").textContent).toContain("database is locked"));
    fail = false;
    fireEvent.click(screen.getByText("Try again"));
    await waitFor(() => expect(screen.getByText("Wanjiku Kamau")).toBeTruthy());
    expect(screen.queryByRole("alert")).toBeNull();
  });
});
