// One chart component over chart.js, with only the parts Malipo draws registered (a smaller bundle).
// Each chart also carries a text summary for screen readers and for tests, which have no canvas.
import { useEffect, useRef } from "preact/hooks";
import {
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  DoughnutController,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartConfiguration,
} from "chart.js";

Chart.register(BarController, BarElement, LineController, LineElement, PointElement, DoughnutController, ArcElement, CategoryScale, LinearScale, Tooltip, Legend);
Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, Ubuntu, sans-serif';
Chart.defaults.animation = false;

export const chartColors = { green: "#0b7a4b", gold: "#f5b82e", dark: "#0b3d2a", muted: "#9fb3a9", danger: "#b3261e" };

export function ChartView(props: { config: ChartConfiguration; summary: string; height?: number }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const context = canvas.current?.getContext?.("2d");
    if (!context) return; // No canvas (tests): the summary stands in.
    const chart = new Chart(context, props.config);
    return () => chart.destroy();
  }, [JSON.stringify(props.config.data), props.config.type]);
  return (
    <div class="chart" style={{ height: `${props.height ?? 220}px` }}>
      <canvas ref={canvas} role="img" aria-label={props.summary} />
    </div>
  );
}
