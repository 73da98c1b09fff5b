// The token tooltip of the document view: one element, filled with one token's numbers and its top-k
// alternatives, placed next to the hovered or focused token. All text goes in through textContent.

import { h, replace, uid } from "./dom.js";
import { fmtInt, fmtNum, fmtProb } from "./format.js";
import { focalWeight, visibleText } from "./tokens.js";

const GAP_PX = 8;

export class TokenTooltip {
  constructor() {
    this.id = uid("token-tooltip");
    this.el = h("div", { id: this.id, class: "token-tooltip", role: "tooltip", "data-testid": "token-tooltip", hidden: true });
    this.index = null;
  }

  hide() {
    this.el.hidden = true;
    this.index = null;
  }

  /**
   * Show token `i` of `data` (the /tokens response) next to `anchor`. `gamma` is the current focal γ;
   * `continuation` says the token shares its characters with the previous one (a byte piece). `at`
   * ({step, source}) shows the numbers of another checkpoint of the series (the scrubber's step):
   * its log p, loss, p, rank and entropy; `data` still gives the text, ids and context.
   */
  show(anchor, data, i, { gamma, continuation = false, spanText = null, scaleLabel = null, at = null } = {}) {
    const numbers = at ? at.source : data;
    const logprob = numbers.logprob[i];
    const w = focalWeight(logprob, gamma);
    const loss = numbers.loss[i];
    const rank = numbers.rank[i];
    const row = (label, value, hint) => h("div", { class: "tt-row", title: hint || null }, h("dt", {}, label), h("dd", {}, value));
    // Top-k lists are stored per run: at another step they are in the token's chart (click it).
    const alternatives = at ? [] : (data.top_ids[i] || []).map((tokenId, j) => {
      const p = Math.exp(data.top_logprobs[i][j]);
      const text = data.top_text && data.top_text[i] && data.top_text[i].length ? data.top_text[i][j] : null;
      const actual = tokenId === data.token_id[i];
      return h("li", { class: ["tt-alt", actual && "is-actual"] },
        h("code", { class: "tok-chip" }, text === null ? `id ${tokenId}` : visibleText(text)),
        h("span", { class: "tt-alt-bar", "aria-hidden": "true" }, h("span", { style: { width: `${(100 * p).toFixed(1)}%` } })),
        h("span", { class: "tt-alt-p" }, fmtProb(p)),
        actual ? h("span", { class: "tt-actual", title: "the token that actually came next" }, "✓") : null);
    });
    replace(this.el,
      h("div", { class: "tt-head" },
        h("code", { class: "tok-chip tok-chip-large" }, visibleText(continuation && spanText ? spanText : data.text[i])),
        h("span", { class: "muted small" }, `token ${fmtInt(i)} · id ${data.token_id[i]}`),
        at ? h("span", { class: "tt-step", "data-testid": "tooltip-step" }, `at step ${fmtInt(at.step)}`) : null),
      continuation ? h("p", { class: "tt-note" }, "A byte piece: this character was split into several tokens; the first one shows it.") : null,
      h("dl", { class: "tt-grid" },
        row("loss", `${fmtNum(loss, 3)} nats`, "−log p of the true token"),
        row("p", fmtProb(numbers.p[i]), "probability the model gave the true token"),
        row("rank", rank === 0 ? "0 (top-1)" : fmtInt(rank), "0-based rank of the true token among all predictions"),
        row("entropy", `${fmtNum(numbers.entropy[i], 3)} nats`, "entropy of the predictive distribution"),
        row(`focal w (γ=${gamma})`, fmtNum(w, 4), "(1 − p)^γ: the weight focal loss puts on this token"),
        row("focal loss", fmtNum(w * loss, 3), "(1 − p)^γ · (−log p)"),
        row("context", `${fmtInt(data.context_len[i])} tokens`, "tokens of context the prediction had"),
        scaleLabel ? row("colour", scaleLabel) : null),
      at ? h("p", { class: "tt-hint" }, "Click the token for its top predictions at every step.")
        : h("div", { class: "tt-alts-title" }, `Top-${alternatives.length} predictions`),
      at ? null : h("ol", { class: "tt-alts", "data-testid": "token-alternatives" }, alternatives));
    this.el.hidden = false;
    this.index = i;
    this.place(anchor);
  }

  /** Below the token if it fits in the viewport, else above; clamped horizontally. */
  place(anchor) {
    const box = anchor.getBoundingClientRect();
    const tip = this.el.getBoundingClientRect();
    const vw = document.documentElement.clientWidth;
    const vh = document.documentElement.clientHeight;
    let top = box.bottom + GAP_PX;
    if (top + tip.height > vh && box.top - GAP_PX - tip.height > 0) top = box.top - GAP_PX - tip.height;
    const left = Math.max(GAP_PX, Math.min(box.left, vw - tip.width - GAP_PX));
    this.el.style.top = `${Math.round(top)}px`;
    this.el.style.left = `${Math.round(left)}px`;
  }
}
