import { Component, type ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { api, type AppInfo } from "./api";
import { useLoad } from "./load";
import { Conversations } from "./screens/conversations";
import { Dashboard } from "./screens/dashboard";
import { Invoices } from "./screens/invoices";
import { Payments } from "./screens/payments";
import { Placeholder } from "./screens/placeholder";
import { Reminders } from "./screens/reminders";
import { Reports } from "./screens/reports";
import { Settings } from "./screens/settings";
import { Simulator } from "./screens/simulator";

export type ScreenId = "dashboard" | "invoices" | "conversations" | "payments" | "reminders" | "reports" | "settings" | "simulator";

export const screens: { id: ScreenId; label: string }[] = [
  { id: "dashboard", label: "Dashboard" },
  { id: "invoices", label: "Invoices" },
  { id: "conversations", label: "Conversations" },
  { id: "payments", label: "Payments" },
  { id: "reminders", label: "Reminders" },
  { id: "reports", label: "Reports" },
  { id: "settings", label: "Settings" },
  { id: "simulator", label: "Simulator" },
];

function Screen(props: { id: ScreenId; info: AppInfo | undefined; go: (id: ScreenId) => void }) {
  switch (props.id) {
    case "dashboard":
      return <Dashboard info={props.info} go={props.go} />;
    case "invoices":
      return <Invoices />;
    case "conversations":
      return <Conversations onNavigate={props.go} />;
    case "payments":
      return <Payments />;
    case "reminders":
      return <Reminders timezone={props.info?.timezone} />;
    case "reports":
      return <Reports timezone={props.info?.timezone} />;
    case "settings":
      return <Settings />;
    case "simulator":
      return <Simulator merchantName={props.info?.merchant_name} onNavigate={props.go} />;
    default:
      return <Placeholder id={props.id} />;
  }
}

/** A screen that fails to draw says so (and can be left) instead of blanking the window. */
class ScreenBoundary extends Component<{ children: ComponentChildren }, { error?: string }> {
  state: { error?: string } = {};
  componentDidCatch(error: unknown) {
    this.setState({ error: error instanceof Error ? `${error.message}` : String(error) });
  }
  render() {
    if (this.state.error) {
      return (
        <div class="error" role="alert">
          <strong>This screen could not be shown.</strong> <span>{this.state.error}</span>
        </div>
      );
    }
    return this.props.children;
  }
}

export function App() {
  const [current, setCurrent] = useState<ScreenId>("dashboard");
  const info = useLoad(api.appInfo);
  const mode = info.data?.daraja_environment;
  return (
    <div class="shell">
      <nav class="sidebar" aria-label="Main">
        <div class="brand">
          <span class="logo" aria-hidden="true">M</span>
          <div>
            <div class="brand-name">Malipo</div>
            <div class="merchant">{info.data?.merchant_name ?? ""}</div>
          </div>
        </div>
        <ul>
          {screens.map((s) => (
            <li key={s.id}>
              <button
                type="button"
                class={s.id === current ? "nav active" : "nav"}
                aria-current={s.id === current ? "page" : undefined}
                onClick={() => setCurrent(s.id)}
                data-screen={s.id}
              >
                {s.label}
              </button>
            </li>
          ))}
        </ul>
        {mode && (
          <div class={`mode mode-${mode}`} title="Where payments go">
            {mode === "simulator" ? "Simulator mode: no real money moves" : mode === "sandbox" ? "Safaricom sandbox" : "Live payments"}
          </div>
        )}
      </nav>
      <main class="content" id="main">
        {info.data?.startup_error && (
          <div class="error" role="alert">
            <strong>Malipo could not start its engine.</strong> <span>{info.data.startup_error}</span>
          </div>
        )}
        <ScreenBoundary key={current}>
          <Screen id={current} info={info.data} go={setCurrent} />
        </ScreenBoundary>
      </main>
    </div>
  );
}
