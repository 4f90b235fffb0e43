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

/** Distinct customers at each stage of the chat funnel. */
export interface Funnel {
  reminded: number;
  replied: number;
  confirmed: number;
  pushed: number;
  paid: number;
}

export interface MonthFigures {
  /** "2026-12". */
  month: string;
  /** Of what fell due in the month, the share paid (by amount, 0–100); null when nothing was due. */
  collection_rate: number | null;
  collected: number;
}

export type AttentionKind =
  | "dispute"
  | "human"
  | "receipt_check"
  | "needs_review"
  | "unmatched_payment"
  | "whatsapp_paused"
  | "mpesa_refused"
  | "event_failed";

/** Something only the merchant can settle. */
export interface AttentionItem {
  kind: AttentionKind;
  id: number;
  title: string;
  detail: string;
  customer_id: number | null;
  customer_name: string | null;
  invoice_number: string | null;
  /** RFC 3339, or "" when unknown. */
  at: string;
}

export interface DashboardView {
  collected_today: number;
  payments_today: number;
  collected_this_month: number;
  owed: number;
  open_invoices: number;
  overdue: number;
  /** Oldest first, ending with this month. */
  months: MonthFigures[];
  funnel: Funnel;
  attention: AttentionItem[];
}

export interface TimelineEntry {
  at: string;
  kind: "change" | "reminder" | "message_in" | "message_out" | "prompt" | "payment";
  title: string;
  detail: string;
}

export type ImportField = "number" | "customer" | "phone" | "amount" | "balance" | "due_date" | "issue_date" | "description";

/** Which header holds each field; "" means "no column for this field", a missing key "find it for me". */
export type Mapping = Partial<Record<ImportField, string | null>>;

export interface RowError {
  /** The line the merchant sees in their spreadsheet. */
  line: number;
  column: string | null;
  reason: string;
}

export interface ImportRow {
  line: number;
  number: string;
  customer_name: string;
  /** Masked. */
  phone: string | null;
  amount: number;
  balance: number | null;
  issue_date: string;
  due_date: string;
  description: string | null;
}

export interface ImportReport {
  created: number;
  updated: number;
  unchanged: number;
  skipped: number;
  warnings: { line: number; invoice: string; message: string }[];
  saved: boolean;
}

export interface ImportPreview {
  source: string;
  headers: string[];
  mapping: Mapping;
  columns_ok: boolean;
  data_rows: number;
  good_rows: number;
  bad_rows: number;
  errors: RowError[];
  errors_total: number;
  sample: ImportRow[];
  /** What "import the valid rows" would do; null when the columns are not understood. */
  plan: ImportReport | null;
}

export type CommitMode = "all_or_nothing" | "valid_rows_only";

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

  dashboard: () => invoke<DashboardView>("dashboard"),
  attention: () => invoke<AttentionItem[]>("attention"),
  resolveAttention: (id: number) => invoke<void>("resolve_attention", { id }),
  resumeWhatsappSending: () => invoke<void>("resume_whatsapp_sending"),
  /** Matches a paybill payment nobody could match to one of the merchant's invoices. */
  matchPayment: (unmatchedId: number, invoiceId: number) => invoke<void>("match_payment", { unmatchedId, invoiceId }),
  invoiceTimeline: (invoiceId: number) => invoke<TimelineEntry[]>("invoice_timeline", { invoiceId }),
  /** Errors: `duplicate` (same reference already recorded), `conflict` (paid, disputed…), `invalid`. */
  recordManualPayment: (invoiceId: number, amount: number, method: "cash" | "bank", reference: string) =>
    invoke<void>("record_manual_payment", { invoiceId, amount, method, reference }),
  /** Checks a file; nothing is saved until `importCommit`. */
  importPreview: (name: string, bytes: Uint8Array, mapping: Mapping) =>
    invoke<ImportPreview>("import_preview", { name, bytes: Array.from(bytes), mapping }),
  /** Errors: `has_errors` (all-or-nothing with bad rows), `no_preview`. */
  importCommit: (mode: CommitMode) => invoke<ImportReport>("import_commit", { mode }),
  onImportProgress: (handler: (p: { done: number; total: number }) => void): Promise<UnlistenFn> =>
    listen<{ done: number; total: number }>("import-progress", (e) => handler(e.payload)),

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
