// The one typed layer over Tauri's IPC. Screens call these functions, never `invoke` directly.
import { invoke } from "@tauri-apps/api/core";

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

export const api = {
  appInfo: () => invoke<AppInfo>("app_info"),
  listInvoices: () => invoke<Invoice[]>("list_invoices"),
};
