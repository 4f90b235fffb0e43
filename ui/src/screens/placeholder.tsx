import { Empty } from "../components";
import type { ScreenId } from "../app";

const coming: Record<string, [string, string]> = {
  reminders: ["Reminders", "Your reminder schedule and the next week's sends will appear here."],
  reports: ["Reports", "Collection rate, days to pay and what makes customers pay will appear here."],
  settings: ["Settings", "M-Pesa (Daraja) and WhatsApp connections will be set here."],
};

export function Placeholder(props: { id: ScreenId }) {
  const [title, text] = coming[props.id] ?? [props.id, ""];
  return (
    <section aria-labelledby="screen-title">
      <h1 id="screen-title">{title}</h1>
      <Empty title="Not available in this version yet">{text}</Empty>
    </section>
  );
}
