// The study's main charts, from the server's numbers: held-out CE against the step per loss (mean
// over seeds with a ±1 sd band), each loss's Δ held-out CE vs ce with its 95% t-interval (grey within
// the seed noise, red beyond it), and nucleus coverage against p (mean ± sd). The selected loss
// (?loss=) is drawn wider, the others fainter. Loss names go through plotlyText.

import * as charts from "../../charts.js";

const FAINT = 0.35;
const NOISE_COLOR = "#9ca3af";
const BEYOND_COLOR = "#dc2626";

export function studyFigures() {
  return {
    heldout: charts.figure("Held-out CE over training (mean ± sd over seeds)",
      "Held-out cross-entropy at each checkpoint step, one line per loss with a band of one standard deviation over seeds", "chart-study-heldout"),
    delta: charts.figure("Held-out CE minus ce's, paired by seed (95% t-interval)",
      "Difference of each loss's final held-out cross-entropy from ce's with its 95% interval", "chart-study-delta"),
    nucleus: charts.figure("Nucleus coverage: the true token inside the smallest top-p set",
      "Share of held-out tokens whose true token is in the top-p set, against p; the diagonal is calibrated", "chart-study-nucleus"),
  };
}

export function drawStudyCharts(figures, view) {
  charts.redraw(figures.heldout.plot, heldoutTraces(view), charts.baseLayout({
    showlegend: true, legend: { orientation: "h" }, hovermode: "x unified", uirevision: "keep",
    xaxis: { title: { text: "step" } }, yaxis: { title: { text: "held-out CE (nats)" } },
  }));
  const compared = view.study.rows.filter((r) => r.metrics.ce.vs_baseline);
  const differences = compared.map((r) => r.metrics.ce.vs_baseline);
  charts.redraw(figures.delta.plot, [{
    type: "bar", x: compared.map((r) => charts.plotlyText(r.loss)), y: differences.map((d) => d.mean),
    marker: { color: differences.map((d) => (d.resolved ? BEYOND_COLOR : NOISE_COLOR)), opacity: compared.map((r) => emphasis(view, r.loss)) },
    error_y: { type: "data", array: differences.map((d) => d.half_width ?? 0), visible: true },
    hovertemplate: "%{x}: %{y:+.3f} nats<extra></extra>",
  }], charts.baseLayout({
    uirevision: "keep", yaxis: { title: { text: "Δ held-out CE (nats)" }, zeroline: true, zerolinecolor: "#6b7280" },
  }));
  charts.redraw(figures.nucleus.plot, nucleusTraces(view), charts.baseLayout({
    showlegend: true, legend: { orientation: "h" }, uirevision: "keep",
    xaxis: { title: { text: "p" } }, yaxis: { title: { text: "coverage" } },
  }));
}

function emphasis(view, loss) {
  return view.selected === null || view.selected === loss ? 1 : FAINT;
}

/** "#rrggbb" at the given opacity, for a band's fill. */
function translucent(hex, alpha) {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

function heldoutTraces(view) {
  return view.study.heldout.flatMap((curve) => {
    const color = view.colors.get(curve.loss);
    const name = charts.plotlyText(curve.loss);
    const opacity = emphasis(view, curve.loss);
    const bound = (sign) => curve.mean.map((m, i) => (m === null ? null : m + sign * (curve.sd[i] ?? 0)));
    const band = { type: "scatter", mode: "lines", x: curve.step, line: { width: 0 }, hoverinfo: "skip", showlegend: false, legendgroup: name, opacity };
    return [
      { ...band, y: bound(-1) },
      { ...band, y: bound(1), fill: "tonexty", fillcolor: translucent(color, 0.18) },
      {
        type: "scatter", mode: "lines+markers", name, legendgroup: name, x: curve.step, y: curve.mean, opacity,
        line: { color, width: view.selected === curve.loss ? 4 : 2 }, marker: { color, size: 6 },
        hovertemplate: `${name}: %{y:.3f}<extra></extra>`,
      },
    ];
  });
}

function nucleusTraces(view) {
  const levels = view.study.nucleus_levels;
  const diagonal = { type: "scatter", mode: "lines", name: "calibrated", x: [levels[0], 1], y: [levels[0], 1], line: { dash: "dot", color: NOISE_COLOR } };
  return [diagonal, ...view.study.rows.map((row) => {
    const stats = levels.map((p) => row.metrics[`coverage_${p}`]);
    const color = view.colors.get(row.loss);
    return {
      type: "scatter", mode: "lines+markers", name: charts.plotlyText(row.loss), x: levels, y: stats.map((m) => m.mean),
      error_y: { type: "data", array: stats.map((m) => m.sd ?? 0), visible: true, color }, opacity: emphasis(view, row.loss),
      line: { color, width: view.selected === row.loss ? 4 : 2 }, marker: { color },
    };
  })];
}
