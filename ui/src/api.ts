// The one typed layer over Tauri's IPC. Screens call these functions, never `invoke` directly.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";

export type InvoiceStatus = "open" | "partially_paid" | "paid" | "disputed" | "cancelled" | "written_off";

export interface Invoice {
  id: number;
  number: string;
  customer_id: number;
  customer_name: string;
  /** Masked, e.g. 2547•••••678. */
  customer_phone: string | null;
  currency: string;
  amount: number;
  balance: number;
  issue_date: string;
  due_date: string;
  status: InvoiceStatus;
  description: string;
}

export interface AppInfo {
  version: string;
  merchant_name: string | null;
  daraja_environment: "simulator" | "sandbox" | "production" | null;
  database: string | null;
  webhook_url: string | null;
  timezone: string | null;
  startup_error: string | null;
}

/** Errors from the core arrive as a stable code and a message for people. */
export interface ApiError {
  code: string;
  message: string;
}

export function isApiError(e: unknown): e is ApiError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

export function errorMessage(e: unknown): string {
  if (isApiError(e)) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

export type AttemptState =
  | "pending"
  | "sending"
  | "pushed"
  | "unknown"
  | "paid"
  | "failed"
  | "cancelled"
  | "timed_out"
  | "rejected"
  | "needs_review";

export interface Attempt {
  id: number;
  invoice_id: number;
  invoice_number: string;
  /** Masked. */
  phone: string;
  amount: number;
  origin: "chat" | "merchant";
  state: AttemptState;
  result_code: number | null;
  receipt: string | null;
  detail: string;
  created_at: string;
  updated_at: string;
}

export interface LedgerEntry {
  id: number;
  receipt: string | null;
  source: "stk_chat" | "stk_merchant" | "c2b" | "manual";
  invoice_number: string | null;
  customer_name: string | null;
  attempt_id: number | null;
  amount: number;
  applied: number;
  credit: number;
  reference: string;
  paid_at: string;
}

export interface PaymentsView {
  attempts: Attempt[];
  ledger: LedgerEntry[];
}

export interface PaymentEvent {
  from_state: string | null;
  to_state: string;
  cause: string;
  detail: string;
  at: string;
}

export interface PaymentUpdate {
  attempt_id: number | null;
  invoice_id: number | null;
  state: AttemptState | null;
  credited: number | null;
  receipt: string | null;
  invoice_paid: boolean;
  correction: boolean;
  detail: string;
}

/** One customer's chat, as the inbox lists it. */
export interface ConversationSummary {
  customer_id: number;
  customer_name: string;
  /** Masked, e.g. 2547•••••678. */
  phone: string;
  handled_by: "bot" | "human";
  last_message: string | null;
  /** RFC 3339. */
  last_at: string | null;
  /** The customer wrote within 24 h, so free-form replies are allowed. */
  window_open: boolean;
  opted_out: boolean;
}

export interface ChatMessage {
  id: number;
  direction: "in" | "out";
  kind: string;
  body: string;
  /** accepted | sent | delivered | read | failed; null for messages from the customer. */
  status: string | null;
  at: string;
}

export interface ConversationUpdate {
  customer_id: number;
}

export interface SimCustomer {
  customer_id: number;
  name: string;
  /** Masked. */
  phone: string;
  open_invoices: number;
  balance: number;
}

/** A simulated M-Pesa STK prompt waiting on a customer's phone. */
export interface SimPrompt {
  checkout_request_id: string;
  customer_id: number | null;
  /** Masked. */
  phone: string;
  amount: number;
  account_reference: string;
  business_name: string;
}

export interface SimButton {
  id: string;
  title: string;
}

export interface SimListRow {
  id: string;
  title: string;
  description: string | null;
}

export interface SimMessage {
  from_customer: boolean;
  text: string;
  buttons: SimButton[];
  list: { button: string; rows: SimListRow[] } | null;
  at: string;
}

export interface SimState {
  /** False when real credentials are in use. */
  enabled: boolean;
  customers: SimCustomer[];
  prompts: SimPrompt[];
}

/** How the simulated customer answers the STK prompt. */
export type SimAnswer = "pin" | "wrong_pin" | "insufficient" | "cancel" | "no_answer";

export const api = {
  appInfo: () => invoke<AppInfo>("app_info"),
  listInvoices: () => invoke<Invoice[]>("list_invoices"),
  listPayments: () => invoke<PaymentsView>("list_payments"),
  paymentTimeline: (attemptId: number) => invoke<PaymentEvent[]>("payment_timeline", { attemptId }),
  requestPayment: (invoiceId: number, amount?: number) => invoke<Attempt>("request_payment", { invoiceId, amount: amount ?? null }),
  /** Called on every payment change; returns the function that stops listening. */
  onPaymentUpdated: (handler: (u: PaymentUpdate) => void): Promise<UnlistenFn> =>
    listen<PaymentUpdate>("payment-updated", (e) => handler(e.payload)),

  listConversations: () => invoke<ConversationSummary[]>("list_conversations"),
  conversationMessages: (customerId: number) => invoke<ChatMessage[]>("conversation_messages", { customerId }),
  /** A person takes the chat; the bot goes quiet for this customer. */
  takeOver: (customerId: number) => invoke<void>("take_over", { customerId }),
  /** The bot answers this customer again. */
  handBack: (customerId: number) => invoke<void>("hand_back", { customerId }),
  /** Errors: `outside_window` (only templates after 24 h), `empty`, `not_human` (take over first). */
  sendMerchantReply: (customerId: number, body: string) => invoke<void>("send_merchant_reply", { customerId, body }),
  /** Called when a message arrives or changes; returns the function that stops listening. */
  onConversationUpdated: (handler: (u: ConversationUpdate) => void): Promise<UnlistenFn> =>
    listen<ConversationUpdate>("conversation-updated", (e) => handler(e.payload)),

  simState: () => invoke<SimState>("sim_state"),
  simMessages: (customerId: number) => invoke<SimMessage[]>("sim_messages", { customerId }),
  simSendText: (customerId: number, body: string) => invoke<void>("sim_send_text", { customerId, body }),
  /** Taps a reply button or a list row on the simulated phone. */
  simTap: (customerId: number, id: string, title: string) => invoke<void>("sim_tap", { customerId, id, title }),
  simAnswer: (checkoutRequestId: string, answer: SimAnswer) => invoke<void>("sim_answer", { checkoutRequestId, answer }),
};
